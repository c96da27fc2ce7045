"""`python -m adapters.shopify` (or `oms-shopify`): the webhook receiver on port 8010."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from adapters.shopify.app import create_app
from adapters.shopify.settings import ShopifySettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # While a topic is missing aiokafka logs every metadata retry (ten a second); the
    # receiver logs the failed publish once, with its cause.
    logging.getLogger("aiokafka.cluster").setLevel(logging.CRITICAL)
    try:
        settings = ShopifySettings()
    except ValidationError as error:
        problems = "; ".join(
            f"OMS_SHOPIFY_{'_'.join(str(part) for part in problem['loc']).upper()}: "
            f"{problem['msg']}"
            for problem in error.errors(include_url=False, include_input=False)
        )
        sys.exit(f"oms-shopify: invalid settings: {problems}")
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port)


if __name__ == "__main__":
    main()
