"""The FastAPI application factory."""

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from landmark.api import errors
from landmark.api.deps import document_sign_in
from landmark.api.graphql.router import router as graphql_router
from landmark.api.leanix import mtm, pathfinder
from landmark.api.leanix import webhooks as leanix_webhooks
from landmark.api.platform import health, identity, oauth, upsolver
from landmark.api.xurrent import imports as xurrent_imports
from landmark.api.xurrent import links as xurrent_links
from landmark.api.xurrent import misc as xurrent_misc
from landmark.api.xurrent import resources as xurrent_resources
from landmark.api.xurrent import webhooks as xurrent_webhooks
from landmark.core.db import Reads, create_engine, session_factory
from landmark.core.jobs import Worker
from landmark.core.logging import configure as configure_logging
from landmark.core.middleware import RequestMiddleware
from landmark.eam import purge as eam_purge
from landmark.eam.metamodel import KnownVersions
from landmark.identity.authn import Authenticator
from landmark.identity.keys import KeyRing, ensure_signing_key
from landmark.identity.pepper import load_pepper
from landmark.identity.ratelimit import MemoryCounter, RateLimiter, RedisCounter
from landmark.settings import Settings, get_settings
from landmark.webhooks import notify
from landmark.webhooks import service as webhooks

DESCRIPTION = """
Landmark is a self-hosted platform for an organisation's IT landscape. It speaks the Xurrent REST
API (`/v1`), the LeanIX APIs (`/services/...`), and its own API (`/api/v1`).

**Signing in** (use *Authorize*): client credentials of an API key (exchanged at `/oauth/token`),
a bearer token (personal, technical-user or Upsolver token, or a JWT), or HTTP Basic with email and
password plus the `X-Requested-By` header.
"""


def create_app(settings: Settings | None = None, *, freeze_heap: bool = False) -> FastAPI:
    """The application. `freeze_heap`: see `served_app`."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url)
        sessions = session_factory(engine)
        keyring = KeyRing()
        async with sessions() as session:
            await ensure_signing_key(session)
            await keyring.load(session)
            pepper = await load_pepper(session, settings)
            await eam_purge.ensure_scheduled(session)  # the daily purge of archived fact sheets
            await webhooks.ensure_purge_scheduled(session)  # and of old webhook deliveries
            await session.commit()
        counter = RedisCounter(settings.redis_url) if settings.redis_url else MemoryCounter()
        app.state.engine = engine
        app.state.sessions = sessions
        app.state.reads = Reads(settings.resolved_database_url, engine)
        app.state.keyring = keyring
        app.state.authenticator = Authenticator(settings, keyring, pepper)
        app.state.rate_limiter = RateLimiter(counter)
        # Each server process runs a worker loop: the embedded default needs no other process.
        stop = asyncio.Event()
        worker = Worker(sessions, settings) if settings.worker_in_process else None
        worker_task = asyncio.create_task(worker.run(stop)) if worker else None
        # Workers in other processes hear of this process's commits (PostgreSQL NOTIFY).
        announcer = asyncio.create_task(notify.announce(settings.resolved_database_url, stop))
        # and of data model changes, so that GraphQL need not read the model's version
        app.state.model_versions = versions = KnownVersions()
        model_listener = asyncio.create_task(versions.listen(settings.resolved_database_url, stop))
        if freeze_heap:
            gc.collect()
            gc.freeze()
        yield
        stop.set()
        if worker_task:
            await worker_task  # lets the running jobs finish
        await announcer
        await model_listener
        if isinstance(counter, RedisCounter):
            await counter.redis.aclose()
        await app.state.reads.dispose()
        await engine.dispose()

    configure_logging(settings.log_level)
    # Swagger UI and ReDoc are served from the package, not a CDN: self-hosted sites may be offline.
    app = FastAPIOffline(
        title="Landmark",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    app.state.settings = settings
    errors.install(app)
    # FastAPI matches routes in this order, one by one: the busiest APIs come first. GraphQL
    # leads: two fixed paths cost the others little, and its clients send many small requests.
    routers = (
        graphql_router,
        xurrent_resources.router,
        xurrent_links.router,
        xurrent_misc.router,
        xurrent_imports.router,
        xurrent_webhooks.router,
        pathfinder.router,
        health.router,
        oauth.router,
        identity.router,
        upsolver.router,
        mtm.router,
        leanix_webhooks.router,
    )
    for router in routers:
        app.include_router(router)
    document_sign_in(app, routers)
    app.add_middleware(
        RequestMiddleware,
        max_body_bytes=settings.max_body_bytes,
        larger_bodies={"/v1/import": settings.import_max_bytes},
    )
    return app


def served_app() -> FastAPI:
    """The app of one `landmark serve` process. Once started, what lives as long as the process
    (modules, schemas, pools) is moved out of the garbage collector's sight (`gc.freeze`): its
    full collections, which a GraphQL page's many objects trigger every few requests, then scan
    only the objects made since (measured in process under GraphQL pages: ~20 ms instead of
    ~150 ms each; docs/decisions.md). Not in `create_app` by
    default: a process that makes many apps (the tests) would keep each one's garbage."""
    return create_app(freeze_heap=True)
