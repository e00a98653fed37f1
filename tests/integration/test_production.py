"""What docker-compose.yml, the Dockerfile, the Caddyfile and the README's systemd unit
ship, proved without Docker (no image can be pulled here): the image's layout started for
real, the compose file checked by Debian's ``docker-compose config``, the Caddyfile run by
Debian's ``caddy``, the unit checked by ``systemd-analyze verify``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from aiohttp import ClientSession, web

from citybots.embedded import free_port
from citybots.platform import Platform
from services.metrics import Metrics
from tests.sandbox_server import serve

ROOT = Path(__file__).resolve().parents[2]
# What the Dockerfile copies into the image before `pip install .`.
SOURCES = ("pyproject.toml", "README.md", "citybots", "bots", "flows", "presentation")
SOURCES += ("services", "admin", "geofence", "nlu", "scripts")
AS_ROOT = os.geteuid() == 0  # then the app runs as nobody, as the image's app user
NOBODY = 65534
# The values docker-compose.yml refuses to start without.
REQUIRED = (
    "CITYBOTS_DOMAIN",
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "WEBHOOK_SECRET",
    "AUDIT_CHAIN_KEY",
    "GRAFANA_ADMIN_PASSWORD",
)


def _run(*argv: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [str(a) for a in argv], capture_output=True, text=True, timeout=600, **kwargs
    )


def _copy_sources(target: Path) -> None:
    target.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _python(root: Path) -> tuple[Path, dict[str, str]]:
    """The test's own Python where nobody can reach it (the image has its own under
    /usr/local; this one may live under /root), hard-linked, and the environment it
    needs: its shared library is found by LD_LIBRARY_PATH, not its absolute RUNPATH."""
    base, version = Path(sys.base_prefix), f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if not AS_ROOT:  # the app runs as the test's user, who reaches it where it is
        return base / "bin" / version, {}
    target = root / "python"
    (target / "bin").mkdir(parents=True)
    _link_or_copy(str(base / "bin" / version), str(target / "bin" / version))
    skip = shutil.ignore_patterns("site-packages", "test", "idlelib", "tkinter", "turtledemo")
    shutil.copytree(base / "lib", target / "lib", symlinks=True, ignore=skip,
                    copy_function=_link_or_copy)  # fmt: skip
    return target / "bin" / version, {"LD_LIBRARY_PATH": str(target / "lib")}


def _writable(folder: Path, writable: bool) -> None:
    for path in (folder, *folder.rglob("*")):
        if not path.is_symlink():  # chmod would follow it out of the tree
            mode = path.stat().st_mode
            path.chmod(mode | 0o200 if writable else mode & ~0o222)


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The image's layout: the package built as a wheel and installed by root into a
    venv nobody else may write (its dependencies, read-only too, from the test venv),
    the bundled NLU model made as the Dockerfile makes it, and ``data`` owned by nobody.
    Run by a user other than root, the app runs as that user and the tree is made
    read-only instead."""
    # pytest's folders are 0700; nobody must reach this one, so it is made here.
    root = Path(tempfile.mkdtemp(prefix="citybots-image-"))
    try:
        root.chmod(0o755)
        source, wheels, app = root / "src", root / "wheels", root / "app"
        _copy_sources(source)
        built = _run(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            wheels,
            source,
        )
        assert built.returncode == 0, built.stdout + built.stderr
        python, python_env = _python(root)
        made = _run(python, "-m", "venv", "--without-pip", app, env=python_env)
        assert made.returncode == 0, made.stderr
        [wheel] = wheels.glob("citybots-*.whl")
        installed = _run(
            sys.executable, "-m", "pip", "--python", app / "bin" / "python", "install",
            "--no-deps", "--no-index", wheel,
        )  # fmt: skip
        assert installed.returncode == 0, installed.stdout + installed.stderr
        [site] = app.glob("lib/python3*/site-packages")
        # The dependencies: the test venv's site-packages, after the app's own (a .pth
        # line adds the folder without its .pth files, so not the editable checkout).
        (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        env = {"PATH": f"{app / 'bin'}:/usr/bin:/bin", "HOME": str(root), "LANG": "C.UTF-8"}
        env.update(python_env)
        (root / "python.env").write_text(json.dumps(python_env))
        bundled = _run(app / "bin" / "citybots", "nlu", "train", "--bundle", env=env, cwd=root)
        assert bundled.returncode == 0, bundled.stdout + bundled.stderr
        shutil.rmtree(source)
        data = root / "data"
        data.mkdir(mode=0o700)
        if AS_ROOT:
            os.chown(data, NOBODY, NOBODY)  # nobody:nogroup, as the volume is `citybots`'s
        else:
            _writable(app, False)
        yield root
    finally:
        if not AS_ROOT:
            _writable(root, True)
        shutil.rmtree(root, ignore_errors=True)


def test_the_image_layout_starts_as_a_non_root_user_writing_only_to_data_dir(
    image: Path,
) -> None:
    app, data = image / "app", image / "data"
    python_env = json.loads((image / "python.env").read_text())
    where = _run(
        app / "bin" / "python",
        "-c",
        "import citybots; print(citybots.__file__)",
        env=python_env,
        cwd=image,
    )
    assert where.stdout.startswith(str(app)), where.stdout + where.stderr  # not the checkout
    [site] = app.glob("lib/python3*/site-packages")
    assert (site / "admin/static/vendor/leaflet/leaflet.js").exists()  # the panel's map
    assert list((site / "nlu/bundled").glob("intents-*.npz"))  # the hotline's model
    before = _tree(app)
    port = free_port()
    env = {
        "PATH": f"{app / 'bin'}:/usr/bin:/bin",
        "HOME": str(data),
        "LANG": "C.UTF-8",
        "DATA_DIR": str(data),
        "ADMIN_HOST": "127.0.0.1",
        "ADMIN_PORT": str(port),
        **python_env,
    }
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
    if not AS_ROOT:
        as_nobody = []  # already not root: the tree is read-only for this user
    process = subprocess.Popen(
        [*as_nobody, str(app / "bin" / "citybots"), "run"],
        env=env,
        cwd=app,  # read-only for nobody, like the image's code: a relative write fails
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    report: dict[str, object] = {}
    try:
        deadline = time.monotonic() + 300  # a bound for a loaded machine, not a timing
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    report = json.load(r)
                    break
            except (OSError, urllib.error.URLError):
                time.sleep(1)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
    assert report.get("status") == "ok", output
    assert process.returncode == 0, output
    assert "citybots: stopped" in output
    assert _tree(app) == before  # nothing written into the code
    assert (data / "postgres").is_dir()  # the embedded servers under DATA_DIR
    assert not (data / "nlu").exists(), output  # the bundled model: nothing trained at start
    user = NOBODY if AS_ROOT else os.geteuid()
    assert all(p.stat().st_uid == user for p in data.rglob("*") if not p.is_symlink())


def _compose_folder(tmp_path: Path, env: dict[str, str]) -> Path:
    """What an operator has: the repository's files and a .env from .env.example."""
    for name in ("docker-compose.yml", "Caddyfile", "Dockerfile", "monitoring", "nlu"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy2(source, tmp_path / name)
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        name = line.partition("=")[0]
        lines.append(f"{name}={env[name]}" if name in env and line == f"{name}=" else line)
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    return tmp_path


def _compose_config(folder: Path) -> subprocess.CompletedProcess[str]:
    docker_compose = shutil.which("docker-compose") or "/usr/bin/docker-compose"
    assert Path(docker_compose).exists(), "make test installs Debian's docker-compose"
    # Only the .env file speaks: none of the caller's variables.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(folder)}
    return _run(docker_compose, "--no-ansi", "config", cwd=folder, env=env)


SAMPLE = {
    "CITYBOTS_DOMAIN": "bots.city.example",
    "POSTGRES_PASSWORD": "0123456789abcdef0123456789abcdef",
    "REDIS_PASSWORD": "fedcba9876543210fedcba9876543210",
    "WEBHOOK_SECRET": "webhook-secret-0123456789",
    "AUDIT_CHAIN_KEY": "00112233445566778899aabbccddeeff",
    "GRAFANA_ADMIN_PASSWORD": "grafana-0123456789",
}


def test_the_compose_file_is_valid_with_the_env_example_filled_in(tmp_path: Path) -> None:
    done = _compose_config(_compose_folder(tmp_path, SAMPLE))
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert {"caddy", "app", "db", "redis", "rasa", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), name
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"caddy", "grafana"}  # the app only through Caddy
    assert {int(p["published"]) for p in services["caddy"]["ports"]} == {80, 443}
    assert all(str(p).startswith("127.0.0.1:") for p in services["grafana"]["ports"])
    app = services["app"]
    assert app["read_only"] is True
    assert app["environment"]["DATA_DIR"] == "/data"
    assert any(str(v).startswith("appdata:/data") for v in app["volumes"])
    assert app["environment"]["WEBHOOK_BASE_URL"] == "https://bots.city.example"
    assert app["environment"]["AUDIT_CHAIN_KEY"] == SAMPLE["AUDIT_CHAIN_KEY"]
    for name, service in services.items():  # no secret on a command line (ps shows them)
        argv = json.dumps([service.get(k) for k in ("command", "entrypoint", "healthcheck")])
        assert not any(secret in argv for secret in SAMPLE.values()), name
    assert services["caddy"]["environment"]["CITYBOTS_DOMAIN"] == "bots.city.example"


@pytest.mark.parametrize("missing", REQUIRED)
def test_the_compose_file_refuses_to_start_without_each_required_value(
    tmp_path: Path, missing: str
) -> None:
    done = _compose_config(
        _compose_folder(tmp_path, {k: v for k, v in SAMPLE.items() if k != missing})
    )
    assert done.returncode != 0
    assert f"set {missing} in .env" in done.stderr


def test_the_caddyfile_serves_https_for_the_domain_proxies_the_app_and_hides_internals(
    tmp_path: Path,
) -> None:
    caddy = shutil.which("caddy") or "/usr/bin/caddy"
    assert Path(caddy).exists(), "make test installs Debian's caddy"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CITYBOTS_DOMAIN": "bots.city.example"}
    argv = [caddy, "adapt", "--config", ROOT / "Caddyfile", "--adapter", "caddyfile"]
    done = _run(*argv, "--validate", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    [server] = config["apps"]["http"]["servers"].values()
    assert server["listen"] == [":443"]  # HTTPS, with automatic certificates and redirects
    [site] = server["routes"]
    assert site["match"] == [{"host": ["bots.city.example"]}]
    handlers = json.dumps(site["handle"])
    assert '"path": ["/metrics", "/metrics/*", "/sandbox", "/sandbox/*"]' in handlers
    assert '"status_code": 404' in handlers
    assert '"handler": "reverse_proxy"' in handlers
    assert '"name": "app", "port": "8080"' in handlers
    without = _run(*argv, env={k: v for k, v in env.items() if k != "CITYBOTS_DOMAIN"})
    assert without.returncode != 0  # no site without the domain


@contextlib.asynccontextmanager
async def _caddy(upstream_port: int, folder: Path) -> AsyncIterator[str]:
    """Caddy with the shipped site block, over plain HTTP on a free port (no certificate
    can be had here), in front of the app found as the compose file finds it (by name)."""
    caddy = shutil.which("caddy") or "/usr/bin/caddy"
    front = free_port()
    site = (ROOT / "Caddyfile").read_text()
    for shipped in ("{$CITYBOTS_DOMAIN} {", "name app", "port 8080"):
        assert shipped in site
    site = (
        site.replace("{$CITYBOTS_DOMAIN} {", f"http://127.0.0.1:{front} {{")
        .replace("name app", "name localhost")
        .replace("port 8080", f"port {upstream_port}")
    )
    config = folder / "Caddyfile"
    config.write_text(f"{{\n\tadmin off\n}}\n{site}")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(folder), "XDG_DATA_HOME": str(folder)}
    process = await asyncio.create_subprocess_exec(
        caddy, "run", "--config", str(config), "--adapter", "caddyfile",
        env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(600):  # until Caddy listens (a bound, not a timing)
            assert process.returncode is None, "caddy exited"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", front)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        yield f"http://127.0.0.1:{front}"
    finally:
        process.terminate()
        await process.wait()


async def test_caddy_with_the_shipped_caddyfile_proxies_the_app_and_hides_internals(
    platform: Platform, tmp_path: Path
) -> None:
    assert platform.port is not None
    async with _caddy(platform.port, tmp_path) as outside, ClientSession() as http:
        async with http.get(f"{outside}/healthz") as response:
            # the app's own report, through Caddy (whether each bot's last call to the
            # shared sandbox went well is other tests' business, hence ok or degraded)
            report = await response.json()
            assert report["worker_pid"] == os.getpid()
            assert report["status"] in ("ok", "degraded")
        for path in ("/metrics", "/sandbox/", "/sandbox/api/bots"):
            async with http.get(f"{platform.base_url}{path}") as direct:
                assert direct.status == 200, path  # there on the app itself ...
            async with http.get(f"{outside}{path}") as hidden:
                assert hidden.status == 404, path  # ... not from outside
                assert "citybots_" not in await hidden.text()
        async with http.get(f"{outside}/login") as login:
            assert login.status == 200  # the panel, through Caddy
            assert "Server" not in login.headers


async def test_caddy_replaces_a_forged_x_forwarded_for_with_the_clients_address(
    tmp_path: Path,
) -> None:
    # The app believes X-Forwarded-For from Caddy (TRUSTED_PROXIES): a stranger's own
    # header must not reach it, or the public check's per-address limit is theirs to pick.
    seen: list[str] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append(request.headers.get("X-Forwarded-For", ""))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/check", echo)
    async with serve(app) as port, _caddy(port, tmp_path) as outside, ClientSession() as http:
        forged = {"X-Forwarded-For": "203.0.113.7"}
        async with http.get(f"{outside}/check", headers=forged) as response:
            assert response.status == 200
    assert seen == ["127.0.0.1"]


def test_the_readmes_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("# /etc/systemd/system/citybots.service")
    unit = readme[start : readme.index("```", start)]
    assert "ExecStart=/opt/citybots/bin/citybots run" in unit
    # The programs are not installed here: a program that is stands in for them.
    (tmp_path / "citybots.service").write_text(
        unit.replace("/opt/citybots/bin/citybots", shutil.which("true") or "/usr/bin/true")
    )
    done = _run("systemd-analyze", "verify", tmp_path / "citybots.service")
    assert done.returncode == 0, done.stderr
    assert "citybots.service" not in done.stderr  # no complaint about the unit itself


def test_every_variable_the_compose_file_and_caddyfile_use_is_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", (ROOT / "docker-compose.yml").read_text()))
    used |= set(re.findall(r"\{\$([A-Z0-9_]+)", (ROOT / "Caddyfile").read_text()))
    documented = set(
        re.findall(r"^#? ?([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE)
    )
    assert used >= set(REQUIRED)
    assert used <= documented, sorted(used - documented)


def test_the_grafana_dashboard_shows_only_metrics_the_app_exports() -> None:
    dashboard = json.loads((ROOT / "monitoring/grafana/dashboards/citybots.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    named = {m for e in exprs for m in re.findall(r"\b((?:citybots|process)_[a-z_]+)", e)}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    exported = {
        family.name + suffix
        for family in Metrics().registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }
    assert named <= exported, sorted(named - exported)
    for wanted in ("updates", "check_ins", "quarantine_alerts", "outbox_backlog", "job_runs"):
        assert any(wanted in e for e in exprs), wanted
