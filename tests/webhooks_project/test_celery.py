from datetime import timedelta

from webhooks_project.celery import app, beat_schedule


def test_beat_runs_the_sweeps_at_the_configured_intervals(settings):
    settings.WEBHOOK_DISPATCH_INTERVAL = timedelta(milliseconds=100)
    settings.WEBHOOK_EXPIRE_INTERVAL = timedelta(seconds=7)
    settings.WEBHOOK_PRUNE_INTERVAL = timedelta(hours=2)
    schedule = beat_schedule()
    assert {name: entry["task"] for name, entry in schedule.items()} == {
        "dispatch-due": "delivery.tasks.dispatch_due",
        "expire-deliveries": "delivery.tasks.expire_deliveries",
        "prune-old-rows": "delivery.tasks.prune_old_rows",
    }
    assert schedule["dispatch-due"]["schedule"] == 0.1
    assert schedule["expire-deliveries"]["schedule"] == 7.0
    assert schedule["prune-old-rows"]["schedule"] == 7200.0
    # a sweep missed while workers were down is dropped, not replayed in a burst
    assert schedule["dispatch-due"]["options"]["expires"] == 1.0


def test_the_app_is_configured_with_the_schedule_and_the_tasks():
    assert set(app.conf.beat_schedule) == {
        "dispatch-due",
        "expire-deliveries",
        "prune-old-rows",
    }
    import delivery.tasks  # noqa: F401 - registers them

    for task in ["deliver_due", "dispatch_due", "expire_deliveries", "prune_old_rows"]:
        assert f"delivery.tasks.{task}" in app.tasks
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
