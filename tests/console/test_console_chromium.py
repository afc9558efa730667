"""Issue 7, acceptance 1 and 3, in a real browser (Debian's chromium driven by Playwright).

A commune broadcaster writes a text bulletin, reads its spoken form and plays the speech, submits it; a
district approver approves it, schedules it and plays it now; the simulated fleet plays it (ground truth);
the coverage page shows it. Every page is photographed, then visited again at 360 × 740 px where the page
must not scroll sideways. Screenshots go to $BCAST_SCREENSHOT_DIR (default tests/console/screenshots/).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.console.conftest import COMMUNE_A, PASSWORD, build_world, two_commune_fleet_text

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("BCAST_SCREENSHOT_DIR", Path(__file__).parent / "screenshots"))
TEXT = "Thông báo: ngày 20/11, UBND xã tổ chức tiêm phòng dại cho chó mèo tại nhà văn hóa thôn 3 từ 7h30."
TITLE = "Tiêm phòng dại cho chó mèo"


class LoopThread:
    """An asyncio loop in its own thread, for the simulated fleet (Playwright's sync API needs this thread)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fleet-sim", daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout_s: float = 120):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def stage(tmp_path):
    """Broker, database with two communes and accounts, simulated fleet, and `bcast server`'s app in a thread."""
    from bcast.broker import LocalBroker
    from bcast.demo import ServerThread, listening_socket
    from broadcast_server.api.app import create_app
    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.domain.fleet import parse_fleet
    from broadcast_server.runtime import Runtime
    from broadcast_server.settings import get_settings
    from firmware_sim.fleet_sim import FleetSimulation

    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(LocalBroker())
        http_socket = listening_socket()
        port = http_socket.getsockname()[1]
        settings = get_settings(
            database_url=f"sqlite:///{tmp_path / 'bcast.sqlite3'}",
            audio_dir=tmp_path / "audio",
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            public_url=f"http://127.0.0.1:{port}",
            heartbeat_interval_s=30,
        )
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        stack.callback(engine.dispose)
        world = build_world(engine)
        rows = parse_fleet(two_commune_fleet_text()).rows
        loop = LoopThread()
        stack.callback(loop.close)
        sim = FleetSimulation(
            [r.cluster_id for r in rows],
            data_root=tmp_path / "agents",
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            topic_root=settings.topic_root,
            communes={r.cluster_id: r.commune or r.district for r in rows},
            heartbeat_interval_s=30.0,
        )
        loop.run(sim.start(connect_timeout_s=60))
        stack.callback(lambda: loop.run(sim.stop()))
        runtime = Runtime.from_settings(settings, engine=engine)
        server = ServerThread(create_app(runtime), http_socket)
        server.start()
        stack.callback(server.stop)
        yield {"base": settings.public_url, "world": world, "sim": sim, "loop": loop, "runtime": runtime}


def _browser(playwright):
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
    )


class Camera:
    """Takes a numbered screenshot of every page visited, per pass."""

    def __init__(self, prefix: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.prefix, self.count = prefix, 0

    def shoot(self, page, name: str) -> None:
        self.count += 1
        page.screenshot(path=str(SCREENSHOTS / f"{self.prefix}-{self.count:02d}-{name}.png"), full_page=True)


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Đăng nhập')")
    page.wait_for_url(f"{base}/")


def sign_out(page) -> None:
    page.click("button:has-text('Đăng xuất')")
    page.wait_for_url("**/login")


def played_clusters(stage, broadcast_id: str) -> set[str]:
    async def read() -> set[str]:
        return {r.cluster_id for r in stage["sim"].ground_truth() if r.broadcast_id == broadcast_id and r.completed}

    return stage["loop"].run(read())


def test_broadcaster_to_approver_to_loudspeakers_in_chromium(stage):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (scripts/system-deps.sh test installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (dev extra)")
    base, world = stage["base"], stage["world"]
    with sync_api.sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            desktop = browser.new_context(viewport={"width": 1280, "height": 860}, locale="vi-VN")
            page = desktop.new_page()
            page.on("dialog", lambda dialog: dialog.accept())
            camera = Camera("desktop")

            # A visitor gets the sign-in page.
            page.goto(f"{base}/")
            assert page.url.startswith(f"{base}/login")
            assert page.locator("h1").inner_text() == "Đăng nhập"
            camera.shoot(page, "dang-nhap")

            # The commune broadcaster writes, previews, listens and submits.
            sign_in(page, base, "xa-a")
            camera.shoot(page, "trang-chu-xa")
            page.click("a:has-text('Soạn bản tin mới')")
            page.fill("input[name=title]", TITLE)
            page.fill("textarea[name=text]", TEXT)
            page.click("button:has-text('Xem trước')")
            page.wait_for_selector("#preview-audio")
            spoken = page.locator("p.spoken").inner_text()
            assert "hai mươi tháng mười một" in spoken and "20/11" not in spoken
            loaded = page.evaluate(
                """async () => {
                    const audio = document.getElementById('preview-audio');
                    audio.muted = true;
                    if (audio.readyState < 1) await new Promise((ok, ko) => {
                        audio.addEventListener('loadedmetadata', ok, {once: true});
                        audio.addEventListener('error', () => ko(new Error('audio ' + audio.error.code)), {once: true});
                    });
                    await audio.play();
                    const started = performance.now();
                    while (audio.currentTime < 0.3 && performance.now() - started < 20000)
                        await new Promise(r => setTimeout(r, 100));
                    audio.pause();
                    const entry = performance.getEntriesByName(audio.currentSrc)[0];
                    return {duration: audio.duration, played: audio.currentTime, src: audio.currentSrc,
                            bytes: entry ? (entry.encodedBodySize || entry.transferSize || entry.decodedBodySize) : 0};
                }"""
            )
            assert loaded["duration"] > 1 and loaded["played"] >= 0.3, loaded
            body = page.request.get(loaded["src"]).body()
            assert len(body) > 2000  # the resource the element played is real audio, not an empty answer
            camera.shoot(page, "soan-tin-xem-truoc")
            page.click("button:has-text('Gửi duyệt')")
            page.wait_for_url("**/bulletins/*?created=1")
            bulletin_id = page.url.split("/bulletins/")[1].split("?")[0]
            assert "Chờ duyệt" in page.content()
            camera.shoot(page, "ban-tin-cho-duyet")
            page.goto(f"{base}/bulletins")
            camera.shoot(page, "danh-sach-ban-tin")
            sign_out(page)

            # The district approver approves, schedules it, and plays it now on commune A.
            sign_in(page, base, "duyet")
            camera.shoot(page, "trang-chu-huyen")
            page.click("a[href='/review']")
            assert TITLE in page.content()
            camera.shoot(page, "duyet-tin")
            page.click(f"#b-{bulletin_id} button:has-text('Duyệt')")
            page.wait_for_url("**/review?done=approved")
            page.goto(f"{base}/bulletins/{bulletin_id}")
            page.click("a:has-text('Lên lịch phát')")
            from broadcast_server.statistics.periods import LOCAL_TZ

            soon = (stage["runtime"].clock.now() + timedelta(minutes=2)).astimezone(LOCAL_TZ)
            page.fill("input[name=start_date]", soon.date().isoformat())
            page.fill("input[name=start_time]", soon.strftime("%H:%M"))
            page.check(f"fieldset.targets label:has-text('{COMMUNE_A}') input")
            page.click("button:has-text('Kiểm tra trùng giờ')")
            page.wait_for_selector("#check-result")
            assert f"<strong>{len(world.clusters_a)}</strong> cụm loa" in page.content()
            camera.shoot(page, "len-lich-kiem-tra")
            page.click("button:has-text('Lưu lịch')")
            page.wait_for_url("**/schedule?*saved=1")
            assert TITLE in page.locator(".day.selected").inner_text()
            camera.shoot(page, "lich-phat-tuan")
            week_url = page.url
            # The airing opens its slot; the approver cancels it there (the console's confirm accepted).
            page.click(f".day.selected a:has-text('{TITLE}')")
            page.wait_for_url("**/schedule/slots/*")
            assert "Các buổi sắp tới" in page.content()
            camera.shoot(page, "khung-gio")
            page.click("button:has-text('Hủy khung giờ này')")
            page.wait_for_url("**/schedule/slots/*?cancelled=1")
            assert "Đã hủy lúc" in page.content() and "Hủy khung giờ này" not in page.content()
            page.goto(week_url)
            assert TITLE not in page.locator(".day.selected").inner_text()
            page.goto(f"{base}/bulletins/{bulletin_id}")
            page.check(f"fieldset.targets label:has-text('{COMMUNE_A}') input")
            camera.shoot(page, "ban-tin-da-duyet")
            page.click("button:has-text('Phát ngay')")
            page.wait_for_url("**/history/*")
            broadcast_id = page.url.rsplit("/", 1)[1]

            # The simulated loudspeakers play it (ground truth), then the coverage page says so.
            deadline = time.monotonic() + 120
            while played_clusters(stage, broadcast_id) != set(world.clusters_a):
                assert time.monotonic() < deadline, f"played: {sorted(played_clusters(stage, broadcast_id))}"
                time.sleep(0.5)
            expected_row = f"{COMMUNE_A} {len(world.clusters_a)} {len(world.clusters_a)} 0"
            deadline = time.monotonic() + 60
            while True:
                page.goto(f"{base}/history/{broadcast_id}")
                row = " ".join(
                    page.locator("#coverage tbody tr").first.inner_text().split()[: 4 + COMMUNE_A.count(" ")]
                )
                if row == expected_row:
                    break
                assert time.monotonic() < deadline, row
                time.sleep(0.5)
            camera.shoot(page, "do-phu-luot-phat")
            page.goto(f"{base}/history")
            assert TITLE in page.content()
            camera.shoot(page, "lich-su-phat")
            for path, name in [
                ("/fleet", "cum-loa"),
                ("/reports", "bao-cao"),
                ("/emergency", "phat-khan-cap"),
                ("/audit", "nhat-ky"),
                ("/schedule/new", "len-lich"),
                ("/bulletins/upload", "tai-tep"),
                ("/bulletins/relay", "tiep-song"),
            ]:
                page.goto(f"{base}{path}")
                assert page.locator("h1").count() == 1
                camera.shoot(page, name)
            assert page.locator("svg.fleet-map").count() == 0  # (the audit page) sanity: no map here
            page.goto(f"{base}/fleet")
            assert page.locator("svg.fleet-map circle").count() == len(world.clusters_a) + len(world.clusters_b)

            # A technician opens a cluster from the map and pings it; the real agent's answer is listed.
            cluster_id = world.clusters_a[0]
            sign_out(page)
            sign_in(page, base, "kythuat")
            page.goto(f"{base}/fleet")
            page.click(f"svg.fleet-map a[href='/fleet/clusters/{cluster_id}'] circle")
            page.wait_for_url(f"**/fleet/clusters/{cluster_id}")
            assert "Trực tuyến từ" in page.locator("#presence").inner_text()
            page.click("button:has-text('Kiểm tra kết nối')")
            page.wait_for_url(f"**/fleet/clusters/{cluster_id}?sent=ping")
            deadline = time.monotonic() + 30
            while "Trả lời kiểm tra" not in page.locator("#reports").inner_text():
                assert time.monotonic() < deadline, page.locator("#reports").inner_text()
                time.sleep(0.5)
                page.reload()
            camera.shoot(page, "mot-cum-loa")

            # Before work on the line: the amplifier off (a confirm dialog), then back on; the agent's
            # heartbeat of each change is what the page shows.
            for button, shown in (("Tắt ampli", "Đang tắt theo lệnh"), ("Bật ampli", "Đang hoạt động")):
                page.click(f"button:has-text('{button}')")
                page.wait_for_url("**?sent=amplifier-*")
                deadline = time.monotonic() + 30
                while shown not in page.locator("#device").inner_text():
                    assert time.monotonic() < deadline, page.locator("#device").inner_text()
                    time.sleep(0.5)
                    page.reload()
            desktop.close()

            _phone_pass(browser, base, bulletin_id, broadcast_id, cluster_id)
        finally:
            browser.close()


PHONE_PAGES = [
    ("/", "trang-chu"),
    ("/bulletins", "ban-tin"),
    ("/bulletins/new", "soan-tin"),
    ("/bulletins/upload", "tai-tep"),
    ("/bulletins/relay", "tiep-song"),
    ("/review", "duyet-tin"),
    ("/schedule", "lich-phat"),
    ("/schedule/new", "len-lich"),
    ("/schedule/slots?show=all", "khung-gio-phat"),
    ("/schedule/file", "nap-tep-lich"),
    ("/fleet", "cum-loa"),
    ("/history", "lich-su-phat"),
    ("/reports", "bao-cao"),
    ("/emergency", "phat-khan-cap"),
    ("/audit", "nhat-ky"),
]


def _no_sideways_scroll(page, what: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{what}: the page is {width} px wide at 360 px"


def _phone_pass(browser, base: str, bulletin_id: str, broadcast_id: str, cluster_id: str) -> None:
    """Every page again at 360 × 740: photographed, and none wider than the screen."""
    phone = browser.new_context(
        viewport={"width": 360, "height": 740}, locale="vi-VN", is_mobile=True, has_touch=True, device_scale_factor=2
    )
    page = phone.new_page()
    camera = Camera("phone-360")
    page.goto(f"{base}/login")
    _no_sideways_scroll(page, "/login")
    camera.shoot(page, "dang-nhap")
    sign_in(page, base, "duyet")
    pages = [
        *PHONE_PAGES,
        (f"/bulletins/{bulletin_id}", "ban-tin-chi-tiet"),
        (f"/history/{broadcast_id}", "do-phu-luot-phat"),
        (f"/fleet/clusters/{cluster_id}", "mot-cum-loa"),
    ]
    for path, name in pages:
        page.goto(f"{base}{path}")
        _no_sideways_scroll(page, path)
        camera.shoot(page, name)
    # The schedule shows one day at a time on a phone, with previous/next.
    page.goto(f"{base}/schedule")
    assert page.locator(".week .day:visible").count() == 1
    assert page.locator(".daynav").is_visible()
    # The menu folds into "Danh mục" and opens.
    page.click("summary:has-text('Danh mục')")
    assert page.locator("nav a:has-text('Phát khẩn cấp')").is_visible()
    camera.shoot(page, "danh-muc")
    # Pages with results: the preview and the emergency confirmation.
    page.goto(f"{base}/bulletins/new")
    page.fill("input[name=title]", "Thử")
    page.fill("textarea[name=text]", "Bà con chú ý: chiều nay 15h có họp thôn.")
    page.click("button:has-text('Xem trước')")
    page.wait_for_selector("#preview-audio")
    _no_sideways_scroll(page, "xem trước")
    camera.shoot(page, "xem-truoc")
    page.goto(f"{base}/emergency")
    page.fill("textarea[name=text]", "Diễn tập: đây là tin thử, không phát.")
    page.check("fieldset.targets input[name=unit_ids] >> nth=0")
    page.click("button:has-text('Tiếp tục')")
    page.wait_for_selector("#estimate")
    _no_sideways_scroll(page, "xác nhận phát khẩn cấp")
    camera.shoot(page, "xac-nhan-khan-cap")
    phone.close()
