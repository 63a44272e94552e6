"""The `landmark` command: serve, worker, migrate, init, demo, keys, import."""

import asyncio
import json
from pathlib import Path
from typing import Any
from uuid import uuid4

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from landmark.settings import get_settings

app = typer.Typer(
    help="Landmark: a self-hosted CMDB and architecture inventory.", no_args_is_help=True
)
keys_app = typer.Typer(help="Token signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
webhooks_app = typer.Typer(help="Webhook subscriptions.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
console = Console()


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Apply migrations, then serve the APIs."""
    import uvicorn

    from landmark.core.migrate import upgrade_sync

    settings = get_settings()
    upgrade_sync(settings.resolved_database_url)
    asyncio.run(_prepare())
    config = uvicorn.Config(
        "landmark.app:served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,
        proxy_headers=True,
        server_header=False,
    )
    if workers > 1:
        from landmark.core.serving import Workers

        Workers(config).run()
    else:
        uvicorn.Server(config).run()


async def _prepare() -> None:
    """First-start state shared by every worker: the signing key and the token pepper."""
    from landmark.core.db import create_engine, session_factory
    from landmark.identity.keys import ensure_signing_key
    from landmark.identity.pepper import load_pepper

    settings = get_settings()
    engine = create_engine(settings.resolved_database_url)
    async with session_factory(engine)() as session:
        await ensure_signing_key(session)
        await load_pepper(session, settings)
    await engine.dispose()


@app.command()
def worker(
    concurrency: int = typer.Option(0, help="Jobs run at once (default: the setting, 1)."),
) -> None:
    """Apply migrations, then run background jobs until SIGTERM or SIGINT (finishing the current
    ones)."""
    from landmark.core.logging import configure as configure_logging
    from landmark.core.migrate import upgrade_sync

    settings = get_settings()
    if concurrency > 0:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    configure_logging(settings.log_level)
    upgrade_sync(settings.resolved_database_url)
    asyncio.run(_work(settings))


async def _work(settings: Any) -> None:
    import signal

    import landmark.models  # noqa: F401  (every table, and the job handlers of every domain)
    from landmark.core.db import create_engine, session_factory
    from landmark.core.jobs import Worker

    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    engine = create_engine(settings.resolved_database_url)
    try:
        await Worker(session_factory(engine), settings).run(stop)
    finally:
        await engine.dispose()


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
    from landmark.core.migrate import upgrade_sync

    upgrade_sync(get_settings().resolved_database_url)
    console.print("Database is up to date.")


@app.command()
def init(
    account: str = typer.Option(..., help="Account id (slug), e.g. wdc."),
    name: str = typer.Option(..., help="Account name."),
    admin_email: str = typer.Option(..., help="Email of the first administrator."),
    admin_password: str = typer.Option(..., help="Password of the first administrator."),
    admin_name: str = typer.Option(
        "", help="Name of the first administrator (default: from the email)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create an account with its first administrator and a personal API token (valid 1 year)."""
    from landmark.core.errors import DomainError

    try:
        result = asyncio.run(_init(account, name, admin_email, admin_password, admin_name))
    except DomainError as exc:
        detail = "; ".join(f"{f}: {m}" for f, m in exc.errors)
        typer.echo(f"error: {exc.message}" + (f" ({detail})" if detail else ""), err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(result))
        return
    console.print(
        f"Account [bold]{result['account']['id']}[/] ({result['account']['name']}) created."
    )
    console.print(f"Administrator: {result['user']['email']} (user {result['user']['id']})")
    console.print("Personal API token (shown once, valid 1 year):")
    console.print(result["api_token"], soft_wrap=True)


async def _init(slug: str, name: str, email: str, password: str, admin_name: str) -> dict[str, Any]:
    from landmark.identity import service

    async def work(session: Any, settings: Any) -> dict[str, Any]:
        made = await service.bootstrap_account(
            session,
            settings,
            slug=slug,
            name=name,
            admin_email=email,
            admin_password=password,
            admin_name=admin_name,
        )
        return {
            "account": {
                "id": made.account.id,
                "uuid": str(made.account.uuid),
                "name": made.account.name,
            },
            "user": {"id": made.admin.id, "email": made.admin.email},
            "api_token": made.token.secret,
        }

    return await _in_database(work)


async def _in_database(work: Any) -> Any:
    """Migrate, then run `work(session, settings)` in a transaction committed if it succeeds."""
    from landmark.core.db import create_engine, session_factory
    from landmark.core.migrate import upgrade
    from landmark.identity.pepper import load_pepper

    settings = get_settings()
    await upgrade(settings.resolved_database_url)
    engine = create_engine(settings.resolved_database_url)
    try:
        async with session_factory(engine)() as session:
            await load_pepper(session, settings)
            result = await work(session, settings)
            await session.commit()
            return result
    finally:
        await engine.dispose()


DEMO_USERS = [
    ("ada@demo.landmark.test", "Ada Admin", "admin"),
    ("max@demo.landmark.test", "Max Member", "member"),
    ("vera@demo.landmark.test", "Vera Viewer", "viewer"),
]
DEMO_PASSWORD = "landmark-demo"


@app.command()
def demo() -> None:
    """Load a demo account with a few users, and print how to sign in."""
    from landmark.core.errors import DomainError

    try:
        tokens = asyncio.run(_demo())
    except DomainError as exc:
        typer.echo(f"error: {exc.message} (the demo account is loaded already?)", err=True)
        raise typer.Exit(1) from None
    base = get_settings().base_url.rstrip("/")
    table = Table(title="Demo account 'demo': every user's password is " + DEMO_PASSWORD)
    for column in ("email", "role", "personal API token (shown once)"):
        table.add_column(column)
    for (email, _, role), token in zip(DEMO_USERS, tokens, strict=True):
        table.add_row(email, role, token)
    console.print(table)
    console.print(f"Try: curl -H 'Authorization: Bearer {tokens[0]}' {base}/api/v1/me")
    console.print(
        f"Or:  curl -u {DEMO_USERS[0][0]}:{DEMO_PASSWORD} -H 'X-Requested-By: me' {base}/api/v1/me"
    )
    console.print(f"Interactive docs: {base}/docs")


async def _demo() -> list[str]:
    from landmark.identity import service

    async def work(session: Any, settings: Any) -> list[str]:
        await service.create_account(session, "demo", "Demo Company")
        tokens = []
        for email, name, role in DEMO_USERS:
            made = await service.add_person(
                session,
                settings,
                "demo",
                email=email,
                password=DEMO_PASSWORD,
                name=name,
                role=role,
                token_days=90,
            )
            tokens.append(made.token.secret)
        return tokens

    return await _in_database(work)


@keys_app.command("rotate")
def rotate_keys() -> None:
    """Sign with a new key from now on; old keys verify until their tokens have expired."""
    from landmark.identity.keys import rotate

    async def work(session: Any, settings: Any) -> str:
        longest = max(settings.access_token_seconds, settings.mtm_token_seconds)
        return (await rotate(session, longest)).kid

    console.print(f"Now signing with key {asyncio.run(_in_database(work))}.")


@app.command("import")
def import_file(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or TSV file."),
    account: str = typer.Option(..., help="Account id (slug)."),
    type: str = typer.Option(..., "--type", help="Record type, e.g. cis, products, people."),
) -> None:
    """Import a CSV or TSV file into an account, here and now, with a progress bar."""
    from landmark.core.errors import DomainError

    try:
        body = asyncio.run(_import(account, type, file))
    except DomainError as exc:
        detail = "; ".join(f"{f}: {m}" for f, m in exc.errors)
        typer.echo(f"error: {exc.message}" + (f" ({detail})" if detail else ""), err=True)
        raise typer.Exit(1) from None
    results = ", ".join(f"{k} {v}" for k, v in body["results"].items())
    console.print(f"Import {body['state']}: {results}. {body.get('message', '')}")
    for entry in body["log"]:
        console.print(f"  line {entry['line']}: {entry['column']}: {entry['message']}")
    if body["state"] != "done":
        raise typer.Exit(1)


async def _import(account: str, type: str, file: Path) -> dict[str, Any]:
    """Store the import and its job, claim the job for this process, run it, show progress."""
    from datetime import timedelta

    from rich.progress import Progress

    import landmark.models  # noqa: F401
    from landmark.cmdb import imports
    from landmark.core import clock
    from landmark.core.db import create_engine, session_factory
    from landmark.core.errors import NotFound
    from landmark.core.events import SYSTEM
    from landmark.core.jobs import Job, Worker, tracked
    from landmark.core.migrate import upgrade
    from landmark.identity.models import Account

    settings = get_settings()
    await upgrade(settings.resolved_database_url)
    engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    content = file.read_bytes()
    worker = Worker(sessions, settings, worker_id=f"cli-import:{uuid4().hex[:8]}")
    try:
        async with sessions() as session:
            if await session.get(Account, account) is None:
                raise NotFound(f"No account {account!r}")
            imp, job = await imports.start(session, account, SYSTEM, type, content, file.name)
            # Claimed by this process at once, so that no other worker takes it.
            job.state, job.attempts, job.locked_by = "running", 1, worker.worker_id
            job.locked_until = clock.now() + timedelta(seconds=settings.worker_lease_seconds)
            await session.commit()
        task = asyncio.create_task(worker.execute(job))
        with Progress(console=console, transient=True) as bar:
            progress = bar.add_task(f"Importing {file.name}", total=imports.count_lines(content))
            while not task.done():
                await asyncio.sleep(0.3)
                async with sessions() as session:
                    saved = await session.scalar(select(Job.progress).where(Job.id == job.id))
                bar.update(progress, completed=(saved or {}).get("line", 0))
        await task
        async with sessions() as session:
            imp, found = await tracked(session, imports.Import, account, imp.token)
            return {
                **imports.status(found),
                "log": await imports.failures(session, account, imp.id),
            }
    finally:
        await engine.dispose()


@webhooks_app.command("test")
def test_webhook(
    subscription: str = typer.Argument(..., help="Subscription id (LeanIX uuid or Xurrent id)."),
) -> None:
    """Send a sample event to a subscription now and show the receiver's answer."""
    from landmark.core.errors import DomainError

    try:
        outcome = asyncio.run(_test_webhook(subscription))
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    result, target, delivery_id = outcome
    status = result.status if result.status is not None else "no answer"
    console.print(f"{target} -> {status} in {result.duration_ms} ms (delivery {delivery_id})")
    if result.error:
        console.print(f"error: {result.error}", markup=False)
    if result.body:
        console.print(result.body, markup=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)


async def _test_webhook(ident: str) -> Any:
    from uuid import UUID

    import landmark.models  # noqa: F401
    from landmark.core.db import create_engine, session_factory
    from landmark.core.errors import BadRequest, NotFound
    from landmark.core.migrate import upgrade
    from landmark.webhooks import service
    from landmark.webhooks.models import PUSH, WebhookSubscription

    settings = get_settings()
    await upgrade(settings.resolved_database_url)
    engine = create_engine(settings.resolved_database_url)
    try:
        sessions = session_factory(engine)
        key = WebhookSubscription.id == int(ident) if ident.isdigit() else None
        if key is None:
            try:
                key = WebhookSubscription.uuid == UUID(ident)
            except ValueError:
                raise NotFound(f"no subscription {ident!r}") from None
        async with sessions() as session:
            sub = await session.scalar(select(WebhookSubscription).where(key))
        if sub is None:
            raise NotFound(f"no subscription {ident!r}")
        if sub.delivery_type != PUSH:
            raise BadRequest(f"subscription {ident} is PULL: there is no target to send to")
        delivery_id, result = await service.send_test(sessions, settings, sub)
        return result, f"{sub.target_method} {sub.target_url}", delivery_id
    finally:
        await engine.dispose()
