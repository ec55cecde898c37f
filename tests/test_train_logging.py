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


def test_a_second_train_in_one_process_logs_into_its_own_file_only(synth_data, tmp_path):
    from speecheq.train import train
    from tests.conftest import train_args

    log = logging.getLogger("speecheq")
    first, second = tmp_path / "first", tmp_path / "second"
    train(train_args(synth_data, first, "--num-epochs", "1", "--stop-after-batches", "1"))
    train(train_args(synth_data, second, "--num-epochs", "1", "--stop-after-batches", "1"))
    log.info("line after both runs")
    (first_log,) = (first / "log").glob("log-train-*")
    (second_log,) = (second / "log").glob("log-train-*")
    first_text, second_text = first_log.read_text(), second_log.read_text()
    assert str(first) in first_text and str(second) not in first_text
    assert str(second) in second_text and str(first) not in second_text
    assert "line after both runs" not in first_text + second_text
    assert not any(getattr(h, "speecheq_run_log", False) for h in log.handlers)
