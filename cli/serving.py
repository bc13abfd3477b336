"""``yizhan serve|keys|demo``: the HTTP API, staff API keys and the demo job."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from yizhan.cli import common
from yizhan.cli.common import (
    app,
    engine,
    keys_app,
)
from yizhan.cli.failures import Interrupted
from yizhan.settings import get_settings


# -- staff keys ----------------------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(name: str) -> None:
    """Create a staff API key called NAME and print it (only its hash is kept: copy it now)."""
    from yizhan.keys import create_key

    with engine().begin() as conn:
        key = create_key(conn, name)
    common.err.print(f"staff key [bold]{name}[/] created; send it as the X-API-Key header. It is not shown again:")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """The staff keys: names and dates (never the keys)."""
    from yizhan.keys import list_keys

    with engine().connect() as conn:
        rows = list_keys(conn)
    table = Table("name", "created", "revoked")
    for r in rows:
        table.add_row(r["name"], f"{r['created_at']:%Y-%m-%d %H:%M}",
                      f"{r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "")
    common.out.print(table)


@keys_app.command("revoke")
def keys_revoke(name: str) -> None:
    """Revoke the staff key called NAME."""
    from yizhan.keys import revoke_key

    with engine().begin() as conn:
        revoke_key(conn, name)
    common.out.print(f"key {name} revoked")


# -- API -----------------------------------------------------------------------------------------------------
@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes sharing the port (each has its own "
                                         "database pools); 2 uses both cores of a 2-core machine")] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request (costs CPU under load)")] = True,
    trusted_proxy: Annotated[list[str] | None, typer.Option(
        help="Address or network (CIDR) of a reverse proxy whose X-Forwarded-For is believed (repeatable; "
             "default: the settings' YIZHAN_TRUSTED_PROXIES, else none)")] = None,
) -> None:
    """Serve the HTTP API (docs at /docs) until Ctrl-C or SIGTERM (requests in flight get YIZHAN_SHUTDOWN_GRACE_S
    seconds, then are cancelled)."""
    check_port(port)
    _serve(host, port, workers=workers, access_log=access_log, trusted_proxies=trusted_proxy)


def check_port(port: int) -> None:
    """InvalidInput unless ``port`` is a TCP port (1-65535): uvicorn would take 70000 modulo 65536."""
    from yizhan.errors import InvalidInput

    if not 1 <= port <= 65535:
        raise InvalidInput(f"--port {port}: 端口须在 1–65535 之间 / a TCP port is 1–65535")


def believed_proxies(option: list[str] | None) -> list[str]:
    """The reverse proxies whose forwarded headers uvicorn believes: the ``--trusted-proxy`` options, else the
    settings' ``trusted_proxies``; none at all when both are empty (``proxy_headers`` off, whatever uvicorn's own
    default of trusting 127.0.0.1). The peer so reported is the client the rate limit counts."""
    return list(option or get_settings().trusted_proxies)


def _serve(host: str, port: int, *, workers: int = 1, access_log: bool = True,
           trusted_proxies: list[str] | None = None) -> None:
    import uvicorn

    from yizhan.api import create_app

    engine()  # start the database first, so errors show here and not on the first request
    proxies = believed_proxies(trusted_proxies)
    # on SIGTERM or Ctrl-C, requests still running after the grace (seconds) are cancelled: an import in flight
    # is then told to stop (routes/staff.py) and rolls back, so the server stops in bounded time
    grace_s = get_settings().shutdown_grace_s
    # uvicorn picks uvloop and httptools (dependencies) when they are installed; uvloop also sets TCP_NODELAY on
    # every connection, which the plain asyncio loop does not do for the sockets of --workers children (each
    # keep-alive answer then waits ~40 ms for a delayed ACK)
    try:
        if workers > 1:
            uvicorn.run("yizhan.api:create_app", factory=True, host=host, port=port, workers=workers,
                        log_level="info", access_log=access_log, proxy_headers=bool(proxies),
                        forwarded_allow_ips=proxies, timeout_graceful_shutdown=grace_s)
        else:
            uvicorn.run(create_app(get_settings()), host=host, port=port, log_level="info", access_log=access_log,
                        proxy_headers=bool(proxies), forwarded_allow_ips=proxies, timeout_graceful_shutdown=grace_s)
    except Interrupted:  # Ctrl-C is how a server stops: uvicorn raises it again once its shutdown is done
        common.err.print("server stopped")


# -- demo ----------------------------------------------------------------------------------------------------
@app.command("demo")
def demo(
    osm: Annotated[Path | None, typer.Option(help="OpenStreetMap extract (.osm or .osm.pbf) of the demo area "
                                             "(default: the Wudaokou extract shipped with yizhan; no download)")
                   ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic stations and demand")] = 7,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop after writing the files")] = False,
    host: Annotated[str, typer.Option(help="Interface for the API")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the API")] = 8000,
) -> None:
    """The whole job on a demo area: database, sample data, import, coverage, map, gap report, new sites, API.

    演示：示例区域、导入、覆盖分析、地图、盲区报告、新站点推荐，然后启动 API（--no-serve 则只写文件）。"""
    check_port(port)
    from yizhan.demo import run_demo

    result = run_demo(osm, seed=seed, say=lambda m: common.err.print(f"[dim]·[/] {m}"), settings=get_settings())
    table = Table(title="yizhan demo 演示", show_header=False)
    for k, v in result.figures.items():
        table.add_row(k, v)
    common.out.print(table)
    common.out.print("写入的文件 / files written:")
    for label, path in result.files.items():
        common.out.print(f"  {label}: {path}", soft_wrap=True, markup=False, highlight=False)
    common.out.print(result.note, soft_wrap=True, markup=False)
    if result.account is not None:
        name, password = result.account
        common.out.print(f"控制台账户（管理员，密码只显示这一次）/ console account (admin, password shown only now): "
                         f"{name} / {password} — 试用后可停用 / disable it after trying: `yizhan users disable "
                         f"{name}`", soft_wrap=True, markup=False, highlight=False)
    else:
        common.out.print("控制台：用已有账户登录 / console: sign in with an existing account", soft_wrap=True,
                         markup=False)
    if no_serve:
        common.out.print("地图可直接用浏览器打开 / open the maps in a browser straight from disk. 之后启动 API / "
                         "to serve the map and the API later: `./run yizhan serve` (or `yizhan serve`), then / (the "
                         "rider's page 骑手页面), /console (sign in 登录), /map and /docs. Staff endpoints need a key: "
                         "`./run yizhan keys create NAME`.", soft_wrap=True,
                         markup=False)
        return
    if get_settings().staff_key is None:
        os.environ["YIZHAN_STAFF_KEY"] = secrets.token_urlsafe(18)
        get_settings.cache_clear()
        key = f"{get_settings().staff_key.get_secret_value()} (valid while this server runs)"  # type: ignore[union-attr]
    else:
        key = "the YIZHAN_STAFF_KEY you set / 您设置的 YIZHAN_STAFF_KEY"
    url = f"http://{host}:{port}"
    lon, lat = result.centre
    served = Table(title="API", show_header=False)
    served.add_row("骑手页面 / rider's page", f"{url}/")
    served.add_row("控制台 / console (sign in)", f"{url}/console")
    served.add_row("地图 / map (served, sign in)", f"{url}/map?run={result.run_id}")
    if result.recommendation_id is not None and result.no_sites_reason is None:
        served.add_row("推荐地图 / recommendation map", f"{url}/map?recommendation={result.recommendation_id}")
    served.add_row("最近驿站 / nearest stations", f"{url}/stations/nearest?lon={lon}&lat={lat}&k=3")
    served.add_row("API 文档 / API docs (sign in)", f"{url}/docs")
    served.add_row("员工密钥 / staff key (X-API-Key)", key)
    common.out.print(served)
    common.out.print(f"serving on {url} — Ctrl-C to stop / 按 Ctrl-C 停止")
    _serve(host, port)
