from aiokafka import ConsumerRecord, TopicPartition

from services.kit.consumer import split_into_lanes


def _records(topic: str, partition: int, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp=0,
            timestamp_type=0,
            key=None,
            value=b"",
            checksum=None,
            serialized_key_size=0,
            serialized_value_size=0,
            headers=(),
        )
        for offset in range(count)
    ]


def _partitions(lane: list[ConsumerRecord[bytes, bytes]]) -> set[tuple[str, int]]:
    return {(record.topic, record.partition) for record in lane}


def test_one_lane_takes_every_record_of_the_fetch() -> None:
    fetched = {
        TopicPartition("a", 0): _records("a", 0, 3),
        TopicPartition("b", 1): _records("b", 1, 2),
    }

    lanes = split_into_lanes(fetched, 1)

    assert len(lanes) == 1
    assert len(lanes[0]) == 5


def test_a_partition_is_never_split_between_lanes_and_keeps_its_order() -> None:
    fetched = {TopicPartition("a", p): _records("a", p, 4 + p) for p in range(5)}

    lanes = split_into_lanes(fetched, 2)

    assert len(lanes) == 2
    assert _partitions(lanes[0]).isdisjoint(_partitions(lanes[1]))
    for lane in lanes:
        for partition in _partitions(lane):
            offsets = [r.offset for r in lane if (r.topic, r.partition) == partition]
            assert offsets == sorted(offsets)
    assert sum(len(lane) for lane in lanes) == sum(4 + p for p in range(5))


def test_lanes_are_shared_out_as_evenly_as_whole_partitions_allow() -> None:
    fetched = {
        TopicPartition("a", 0): _records("a", 0, 10),
        TopicPartition("a", 1): _records("a", 1, 6),
        TopicPartition("a", 2): _records("a", 2, 4),
    }

    sizes = sorted(len(lane) for lane in split_into_lanes(fetched, 2))

    assert sizes == [10, 10]


def test_no_lane_is_empty_when_fewer_partitions_than_lanes_have_records() -> None:
    fetched = {TopicPartition("a", 0): _records("a", 0, 3), TopicPartition("a", 1): []}

    lanes = split_into_lanes(fetched, 4)

    assert [len(lane) for lane in lanes] == [3]


def test_an_empty_fetch_gives_no_lanes() -> None:
    assert split_into_lanes({}, 2) == []
