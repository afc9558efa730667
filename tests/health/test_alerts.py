"""Alert rules: offline past a threshold, commune share, recovery, and one grouped alert for a storm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broadcast_server.health.alerts import AlertEngine, AlertPolicy

T0 = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)  # 08:00 local


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


POLICY = AlertPolicy(
    offline_after_s=600,
    commune_min_online_share=0.5,
    storm_window_s=60,
    storm_min_clusters=5,
    storm_min_fraction=0.2,
    settle_s=300,
)


def fleet(communes: dict[str, int]) -> dict[str, str]:
    return {f"{name.split()[-1].lower()}-{i:02d}": name for name, n in communes.items() for i in range(n)}


def engine_for(members: dict[str, str]) -> AlertEngine:
    return AlertEngine(POLICY, members, online=members, now=T0)


def kinds(alerts):
    return [a.kind for a in alerts]


def test_a_short_drop_says_nothing_a_long_one_alerts_once_then_recovers():
    members = fleet({"Xã An": 4, "Xã Bình": 4})
    engine = engine_for(members)
    assert engine.on_change("an-00", False, s(0)) == []
    assert engine.on_change("an-00", True, s(100)) == []  # back before the threshold
    assert engine.due(s(1000)) == []
    engine.on_change("an-01", False, s(1000))
    assert engine.next_wakeup() == s(1600)
    assert engine.due(s(1599)) == []
    alerts = engine.due(s(1600))
    assert kinds(alerts) == ["cluster_offline"]
    assert alerts[0].message == "Cụm loa an-01 (Xã An) mất kết nối từ 08:16 01/10/2026, đã 10 phút."
    assert engine.due(s(5000)) == []  # once
    back = engine.on_change("an-01", True, s(5000))
    assert kinds(back) == ["cluster_recovered"] and "đã kết nối lại lúc" in back[0].message
    payload = back[0].payload()
    assert payload["kind"] == "cluster_recovered" and payload["message"] == back[0].message


def test_commune_below_its_share_alerts_after_the_delay_and_on_recovery():
    members = {"a1": "Xã An", "a2": "Xã An", "a3": "Xã An", "b1": "Xã Bình"}
    engine = engine_for(members)
    engine.on_change("a1", False, s(0))
    assert engine.due(s(700)) != []  # a1 alone (cluster alert); An still at 2/3
    assert "Xã An" not in engine.low_since
    engine.on_change("a2", False, s(800))  # 1/3 online: below half
    assert kinds(engine.due(s(1399))) == []
    alerts = engine.due(s(1400))
    assert sorted(kinds(alerts)) == ["cluster_offline", "commune_low"]
    low = next(a for a in alerts if a.kind == "commune_low")
    assert low.commune == "Xã An" and "1/3" in low.message and "dưới ngưỡng 50%" in low.message
    recovered = engine.on_change("a2", True, s(2000))
    assert sorted(kinds(recovered)) == ["cluster_recovered", "commune_recovered"]


def test_a_broker_restart_sends_one_grouped_alert_and_no_per_cluster_storm():
    members = fleet({"Xã An": 10, "Xã Bình": 10, "Xã Cát": 10})
    engine = engine_for(members)
    alerts = []
    for i, cluster_id in enumerate(sorted(members)):  # everything drops within 30 s
        alerts += engine.on_change(cluster_id, False, s(i))
    assert kinds(alerts) == ["mass_offline"]
    assert "Tạm dừng cảnh báo" in alerts[0].message
    # Long past every per-cluster and per-commune threshold, while the outage lasts: silence.
    assert engine.due(s(3000)) == []
    # Most come back; four do not (fewer than the storm threshold of 6 = 20% of 30).
    still = sorted(members)[:4]
    for cluster_id in sorted(members)[4:]:
        assert engine.on_change(cluster_id, True, s(3100)) == []  # recoveries inside a storm: held too
    # Settled (no drop for 300 s, fewer than the threshold still down): one summary, then the four, grouped.
    ended = engine.due(s(3100))
    assert kinds(ended) == ["mass_recovered", "cluster_offline"]
    assert ended[0].details == {"recovered": 26, "still_offline": 4} and ended[0].cluster_ids == tuple(still)
    assert set(ended[1].cluster_ids) == set(still) and "4 cụm loa mất kết nối quá 10 phút" in ended[1].message
    assert engine.due(s(9000)) == []


def test_a_storm_that_has_not_settled_holds_alerts_even_after_recoveries():
    members = fleet({"Xã An": 10, "Xã Bình": 10})
    engine = engine_for(members)
    for i, cluster_id in enumerate(sorted(members)):
        engine.on_change(cluster_id, False, s(i))
    for cluster_id in sorted(members)[2:]:
        engine.on_change(cluster_id, True, s(100))
    assert engine.next_wakeup() == s(19 + 300)
    assert engine.due(s(318)) == []  # the last drop was 299 s ago
    assert kinds(engine.due(s(319))) == ["mass_recovered"]


def test_clusters_offline_before_start_are_not_news_but_recent_ones_are():
    members = {"old": "Xã An", "new": "Xã An", "up": "Xã An", "up2": "Xã An"}
    engine = AlertEngine(
        POLICY,
        members,
        online=["up", "up2"],
        offline_since={"old": s(-86400), "new": s(-60)},
        now=T0,
    )
    alerts = engine.due(s(600))
    assert [a.cluster_ids for a in alerts] == [("new",)]
