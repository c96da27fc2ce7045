// The overview's charts: built once, then fed by the "charts" server-sent event. The
// event's element is never swapped: its data is JSON for the charts, not HTML.
(function () {
  "use strict";
  const palette = ["#6366f1", "#0ea5e9", "#14b8a6", "#22c55e", "#eab308", "#f59e0b",
    "#ef4444", "#b91c1c", "#10b981", "#8b5cf6", "#64748b", "#ec4899"];
  const charts = {};

  function lineChart(id, stacked) {
    const canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") return null;
    return new Chart(canvas, {
      type: "line",
      data: { labels: [], datasets: [] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        elements: { point: { radius: 0 }, line: { borderWidth: 1.5 } },
        scales: { y: { beginAtZero: true, stacked: stacked }, x: { ticks: { maxTicksLimit: 12 } } },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 10 } } },
      },
    });
  }

  function feed(chart, block, fill) {
    if (!chart) return;
    chart.data.labels = block.labels;
    chart.data.datasets = Object.entries(block.series).map(([name, values], index) => ({
      label: name.replace(/_/g, " "), data: values, fill: fill,
      borderColor: palette[index % palette.length],
      backgroundColor: palette[index % palette.length] + (fill ? "55" : ""),
    }));
    chart.update("none");
  }

  function update(data) {
    feed(charts.funnel, data.funnel, true);
    feed(charts.rates, data.rates, false);
    document.body.dataset.chartsUpdated = String(Date.now());
  }

  function start() {
    charts.funnel = lineChart("funnel-chart", true);
    charts.rates = lineChart("rates-chart", false);
    fetch("/api/charts").then((answer) => answer.json()).then(update).catch(() => {});
    document.body.addEventListener("htmx:sseBeforeMessage", (event) => {
      if (event.target.id !== "chart-data") return;
      event.preventDefault();
      try { update(JSON.parse(event.detail.data)); } catch (error) { console.warn(error); }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
