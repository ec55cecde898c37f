"""Each training run's log file holds that run's lines only, even when one process trains twice."""

import logging

from speecheq.train import setup_logging


def test_a_second_run_in_one_process_does_not_write_into_the_first_runs_log(tmp_path):
    log = logging.getLogger("speecheq")
    first, second = tmp_path / "first", tmp_path / "second"
    setup_logging(first, 0)
    log.info("line of the first run")
    setup_logging(second, 0)
    log.info("line of the second run")
    first_text = "".join(p.read_text() for p in (first / "log").glob("log-train-*"))
    second_text = "".join(p.read_text() for p in (second / "log").glob("log-train-*"))
    assert "line of the first run" in first_text and "line of the second run" not in first_text
    assert "line of the second run" in second_text and "line of the first run" not in second_text
    assert sum(getattr(h, "speecheq_run_log", False) for h in log.handlers) == 1
