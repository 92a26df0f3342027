"""protocol.py on frames taken from PROTOCOL.md and the 0.x WebSocket document."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from linkis_magic import protocol as p

LEGACY_ID = "030514IDEspark127.0.0.1:9104IDE_hadoop_spark_0"
REST_ID = "exec_id018014linkis-cg-entrance127.0.0.1:9104IDE_hadoop_spark_0"
DOC_ID = "030418IDEhivebdpdwc010004:10087IDE_johnnwang_21"
TAG = "37fcbd8b762d465a0c870684a0261c6e"


# --------------------------------------------------------------------------- building


def test_execute_frame_has_the_documented_shape_with_tag_at_top_level() -> None:
    frame = p.build_execute_frame(
        "show tables",
        "spark",
        "sql",
        tag=TAG,
        variables={"k1": "v1"},
        special={"k2": "v2"},
        runtime={"k3": "v3"},
        startup={"k4": "v4"},
        script_path="/home/Linkis/Linkis.sql",
    )

    assert frame == {
        "method": "/api/rest_j/v1/entrance/execute",
        "websocketTag": TAG,
        "data": {
            "executeApplicationName": "spark",
            "requestApplicationName": "IDE",
            "executionCode": "show tables",
            "runType": "sql",
            "params": {
                "variable": {"k1": "v1"},
                "configuration": {
                    "startup": {"k4": "v4"},
                    "runtime": {"k3": "v3"},
                    "special": {"k2": "v2"},
                },
            },
            "source": {"scriptPath": "/home/Linkis/Linkis.sql"},
        },
    }
    assert json.loads(p.encode_frame(frame)) == frame


def test_every_variable_and_configuration_value_travels_as_a_string() -> None:
    frame = p.build_execute_frame(
        "x",
        "spark",
        "sql",
        tag="t",
        variables={"n": 3, "f": 1.5, "b": True, "off": False},
        startup={"spark.executor.instances": 2},
    )

    params = frame["data"]["params"]
    assert params["variable"] == {"n": "3", "f": "1.5", "b": "true", "off": "false"}
    assert params["configuration"]["startup"] == {"spark.executor.instances": "2"}


def test_submit_body_is_the_1x_shape_with_labels() -> None:
    body = p.build_submit_body(
        "select ${v} as x", "spark", "sql", user="hadoop", variables={"v": 1}
    )

    assert body["executionContent"] == {"code": "select ${v} as x", "runType": "sql"}
    assert body["labels"] == {"engineType": "spark-2.4.3", "userCreator": "hadoop-IDE"}
    assert body["params"]["variable"] == {"v": "1"}


def test_engine_type_label_keeps_an_explicit_version() -> None:
    assert p.engine_type_label("spark-3.2.1") == "spark-3.2.1"
    assert p.engine_type_label("spark", {"spark": "3.4.4"}) == "spark-3.4.4"
    assert p.engine_type_label("trino") == "trino"
    assert p.split_engine_type("spark-3.2.1") == ("spark", "3.2.1")
    assert p.split_engine_type("python") == ("python", None)


def test_job_frames_name_the_job_in_the_method() -> None:
    assert p.build_job_frame(LEGACY_ID, "status") == {
        "method": f"/api/rest_j/v1/entrance/{LEGACY_ID}/status",
        "data": {},
    }


def test_server_envelope_always_has_four_keys() -> None:
    assert p.build_message(None, 0, "OK") == {
        "method": None,
        "status": 0,
        "message": "OK",
        "data": {},
    }


# --------------------------------------------------------------------------- parsing

EXECUTE_A = {
    "method": "/api/rest_j/v1/entrance/execute",
    "status": 0,
    "message": "Request execution succeeded(请求执行成功)",
    "data": {"execID": LEGACY_ID, "taskID": 123, "websocketTag": TAG},
}
EXECUTE_B = {**EXECUTE_A, "message": "The request was executed successfully!"}


def test_execute_reply_becomes_accepted_with_ids_and_tag() -> None:
    event = p.parse_frame(json.dumps(EXECUTE_A))

    assert event == p.ExecuteAccepted(LEGACY_ID, 123, TAG, EXECUTE_A["message"])


def test_the_two_execute_replies_are_one_event() -> None:
    reader = p.FrameReader()

    first = reader.feed(json.dumps(EXECUTE_A))
    second = reader.feed(json.dumps(EXECUTE_B))

    assert isinstance(first, p.ExecuteAccepted)
    assert isinstance(second, p.Ignored)
    assert "second execute reply" in second.reason


def test_documented_execute_reply_with_string_task_id() -> None:
    doc = {
        "method": "/api/rest_j/v1/entrance/execute",
        "status": 0,
        "message": "请求执行成功",
        "data": {"execID": DOC_ID, "taskID": "123"},
    }

    event = p.parse_frame(doc)

    assert event == p.ExecuteAccepted(DOC_ID, 123, None, "请求执行成功")


def test_status_push_from_the_source() -> None:
    frame = {
        "method": f"/api/rest_j/v1/entrance/{LEGACY_ID}/status",
        "status": 0,
        "message": "Get the status of the task successfully(获取任务状态成功)",
        "data": {"execID": LEGACY_ID, "status": "Running", "websocketTag": TAG, "taskID": 123},
    }

    event = p.parse_frame(json.dumps(frame))

    assert event == p.StatusChanged(LEGACY_ID, 123, p.JobStatus.RUNNING, TAG)


def test_tag_is_accepted_at_top_level_as_the_document_shows() -> None:
    frame = {
        "method": f"/api/rest_j/v1/entrance/{DOC_ID}/status",
        "status": 0,
        "message": "返回状态信息",
        "data": {"execID": DOC_ID, "taskID": 28594, "status": "Running"},
        "websocketTag": TAG,
    }

    event = p.parse_frame(frame)

    assert isinstance(event, p.StatusChanged)
    assert event.tag == TAG
    assert event.task_id == 28594


def test_progress_payload_under_a_log_method_is_progress() -> None:
    frame = {
        "method": f"/api/rest_j/v1/entrance/{DOC_ID}/log",
        "status": 0,
        "message": "返回进度信息信息",
        "data": {
            "execID": DOC_ID,
            "taskID": 28594,
            "progress": 0.2,
            "progressInfo": [
                {
                    "id": "job-1",
                    "succeedTasks": 2,
                    "failedTasks": 0,
                    "runningTasks": 5,
                    "totalTasks": 10,
                },
                {
                    "id": "job-2",
                    "succeedTasks": 5,
                    "failedTasks": 0,
                    "runningTasks": 5,
                    "totalTasks": 10,
                },
            ],
        },
        "websocketTag": TAG,
    }

    event = p.parse_frame(frame)

    assert isinstance(event, p.ProgressUpdate)
    assert event.progress == pytest.approx(0.2)
    assert event.progress_info == (
        p.ProgressInfo("job-1", 2, 0, 5, 10),
        p.ProgressInfo("job-2", 5, 0, 5, 10),
    )
    assert event.progress_info[0].to_wire() == frame["data"]["progressInfo"][0]


def test_progress_push_from_the_source() -> None:
    frame = {
        "method": f"/api/rest_j/v1/entrance/{LEGACY_ID}/progress",
        "status": 0,
        "message": "return the schedule information (返回进度信息!)",
        "data": {
            "progress": 1.0,
            "progressInfo": [],
            "execID": LEGACY_ID,
            "websocketTag": None,
            "taskID": 123,
        },
    }

    event = p.parse_frame(frame)

    assert event == p.ProgressUpdate(LEGACY_ID, 123, 1.0, (), None)


def test_log_push_has_four_buckets() -> None:
    frame = {
        "method": f"/api/rest_j/v1/entrance/{DOC_ID}/log",
        "status": 0,
        "message": "返回日志信息",
        "data": {
            "execID": DOC_ID,
            "log": ["error日志", "warn日志", "info日志", "all日志"],
            "taskID": 28594,
            "fromLine": 56,
        },
        "websocketTag": TAG,
    }

    event = p.parse_frame(frame)

    assert event == p.LogLines(
        DOC_ID, 28594, "error日志", "warn日志", "info日志", "all日志", 56, TAG
    )


def test_log_pull_reply_of_a_1_1_server_has_null_buckets() -> None:
    frame = {
        "method": f"/api/rest_j/v1/entrance/{LEGACY_ID}/log",
        "status": 0,
        "message": "Successfully obtained log information(成功获取到日志信息)",
        "data": {"execID": LEGACY_ID, "log": [None, None, None, None], "websocketTag": None},
    }

    event = p.parse_frame(frame)

    assert isinstance(event, p.LogLines)
    assert event.empty


def test_log_as_one_string_is_the_all_bucket() -> None:
    assert p.split_log_buckets("a\nb") == ("", "", "", "a\nb")
    assert p.split_log_buckets(["e"]) == ("e", "", "", "")


def test_waiting_size_push() -> None:
    frame = {
        "method": "/api/rest_j/v1/entrance/0514spark127.0.0.1:9104IDE_hadoop_spark_0/waitingSize",
        "status": 0,
        "message": "Get waiting size succeed.",
        "data": {"execID": "x", "taskID": 7, "waitingSize": 3, "websocketTag": TAG},
    }

    event = p.parse_frame(frame)

    assert event == p.WaitingSize("x", 7, 3, TAG)


def test_kill_reply() -> None:
    frame = {
        "method": f"/api/rest_j/v1/entrance/{LEGACY_ID}/kill",
        "status": 0,
        "message": "Kill task succeeded(kill任务成功)",
        "data": {},
    }

    assert p.parse_frame(frame) == p.KillReply(LEGACY_ID, "Kill task succeeded(kill任务成功)")


def test_rest_style_methods_without_rest_j_are_understood() -> None:
    frame = {
        "method": f"/api/entrance/{REST_ID}/status",
        "status": 0,
        "message": "OK",
        "data": {"status": "Succeed", "execID": REST_ID},
    }

    event = p.parse_frame(frame)

    assert event == p.StatusChanged(REST_ID, None, p.JobStatus.SUCCEED)


def test_validation_error_on_execute_carries_code_and_desc() -> None:
    frame = {
        "method": "/api/rest_j/v1/entrance/execute",
        "status": 1,
        "message": "error code(错误码): 20007, error message(错误信息): The param executionCode "
        "cannot be empty (参数 executionCode 不能为空).",
        "data": {
            "errorMsg": {
                "level": 2,
                "errCode": 20007,
                "desc": "The param executionCode cannot be empty (参数 executionCode 不能为空)",
                "ip": "host",
                "port": 9104,
                "serviceKind": "linkis-cg-entrance",
            }
        },
    }

    event = p.parse_frame(frame)

    assert isinstance(event, p.ErrorReply)
    assert event.kind is p.ErrorKind.ERROR
    assert event.err_code == 20007
    assert event.desc is not None and "executionCode" in event.desc
    assert not event.is_gateway_error


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (-1, p.ErrorKind.NOT_LOGGED_IN),
        (1, p.ErrorKind.ERROR),
        (2, p.ErrorKind.VALIDATION_FAILED),
        (3, p.ErrorKind.NO_PERMISSION),
        (4, p.ErrorKind.WARNING),
    ],
)
def test_error_kinds_by_status(status: int, kind: p.ErrorKind) -> None:
    frame = {"method": p.EXECUTE_METHOD, "status": status, "message": "m", "data": {}}

    event = p.parse_frame(frame)

    assert isinstance(event, p.ErrorReply)
    assert event.kind is kind
    assert event.status == status


def test_not_logged_in_frame_echoes_the_tag() -> None:
    frame = {
        "method": p.EXECUTE_METHOD,
        "status": -1,
        "message": "You are not logged in, please login first!(您尚未登录，请先登录!)",
        "data": {"websocketTag": TAG},
    }

    event = p.parse_frame(frame)

    assert isinstance(event, p.ErrorReply)
    assert event.kind is p.ErrorKind.NOT_LOGGED_IN
    assert event.tag == TAG


def test_gateway_error_frame_is_recognised() -> None:
    frame = {
        "method": "/ws/api/entrance/connect",
        "status": 1,
        "message": "Cannot find a service to deal /ws/api/entrance/connect, ignore it.",
        "data": None,
    }

    event = p.parse_frame(frame)

    assert isinstance(event, p.ErrorReply)
    assert event.is_gateway_error


def test_job_error_names_the_job() -> None:
    frame = {
        "method": f"/api/rest_j/v1/entrance/{LEGACY_ID}/status",
        "status": 1,
        "message": "Get task status failed(获取任务状态失败)",
        "data": {},
    }

    event = p.parse_frame(frame)

    assert isinstance(event, p.ErrorReply)
    assert event.exec_id == LEGACY_ID
    assert not event.is_gateway_error


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "not JSON"),
        ("{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"method": "/api/rest_j/v1/other", "status": 0, "data": {}}', "unknown method"),
        ('{"method": 5, "status": 0}', "unknown method"),
        ('{"method": "/api/rest_j/v1/entrance/x/status", "status": "x"}', "not a number"),
        ('{"method": "/api/rest_j/v1/entrance/x/status", "status": 0, "data": {}}', "without"),
        (
            '{"method": "/api/rest_j/v1/entrance/x/status", "status": 0,'
            ' "data": {"status": "Dancing"}}',
            "unknown job status",
        ),
        ('{"method": "/api/rest_j/v1/entrance/execute", "status": 0, "data": {}}', "execID"),
        ('{"method": "/api/rest_j/v1/entrance/x/pause", "status": 0, "data": {}}', "pause"),
        ('{"method": "/api/rest_j/v1/entrance/x/status", "status": 9}', "unknown status"),
        (
            '{"method": "/api/rest_j/v1/entrance/x/progress", "status": 0,'
            ' "data": {"progress": "lots"}}',
            "not a number",
        ),
    ],
)
def test_malformed_or_unknown_frames_are_ignored_with_a_reason(
    raw: str | bytes, reason: str
) -> None:
    event = p.parse_frame(raw)

    assert isinstance(event, p.Ignored)
    assert reason in event.reason


def test_progress_is_clamped_and_odd_entries_are_tolerated() -> None:
    frame = {
        "method": "/api/rest_j/v1/entrance/x/progress",
        "status": 0,
        "data": {"progress": 3, "progressInfo": [{"id": "s", "totalTasks": "4"}, "junk"]},
    }

    event = p.parse_frame(frame)

    assert isinstance(event, p.ProgressUpdate)
    assert event.progress == 1.0
    assert event.progress_info == (p.ProgressInfo("s", total_tasks=4),)


def test_emit_stamp_is_read_when_present() -> None:
    frame = {
        "method": "/api/rest_j/v1/entrance/x/status",
        "status": 0,
        "data": {"status": "Running", p.EMIT_STAMP_KEY: 12.5},
    }

    event = p.parse_frame(frame)

    assert isinstance(event, p.StatusChanged)
    assert event.emitted == 12.5


def test_rest_envelope() -> None:
    env = p.parse_envelope(
        {"method": "/api/entrance/submit", "status": 0, "message": "OK", "data": {"taskID": 1}}
    )

    assert env.ok
    assert env.data == {"taskID": 1}
    with pytest.raises(ValueError):
        p.parse_envelope({"message": "no status"})
    err = p.parse_envelope({"status": 1, "message": "x", "data": {"errorMsg": {"errCode": 80034}}})
    assert not err.ok
    assert err.err_code == 80034


# --------------------------------------------------------------------------- statuses


def test_status_model() -> None:
    terminal = {s for s in p.JobStatus if s.is_terminal}

    assert terminal == {
        p.JobStatus.SUCCEED,
        p.JobStatus.FAILED,
        p.JobStatus.CANCELLED,
        p.JobStatus.TIMEOUT,
    }
    assert [s.value for s in p.JobStatus] == [
        "Inited",
        "WaitForRetry",
        "Scheduled",
        "Running",
        "Succeed",
        "Failed",
        "Cancelled",
        "Timeout",
    ]
    assert p.JobStatus.parse("running") is p.JobStatus.RUNNING
    assert str(p.JobStatus.SUCCEED) == "Succeed"
    with pytest.raises(ValueError):
        p.JobStatus.parse("Unknown")


def test_message_status_http_codes() -> None:
    assert [s.http_code for s in p.MessageStatus] == [401, 200, 400, 412, 403, 206]


# --------------------------------------------------------------------------- execIDs


def test_legacy_exec_id_round_trip() -> None:
    encoded = p.encode_legacy_exec_id("IDE", "spark", "127.0.0.1:9104", "IDE_hadoop_spark_0")

    assert encoded == LEGACY_ID
    assert p.decode_exec_id(LEGACY_ID) == p.ExecID(
        "legacy",
        instance="127.0.0.1:9104",
        job_id="IDE_hadoop_spark_0",
        creator="IDE",
        engine="spark",
    )


def test_document_exec_id_decodes() -> None:
    decoded = p.decode_exec_id(DOC_ID)

    assert (decoded.creator, decoded.engine, decoded.instance, decoded.job_id) == (
        "IDE",
        "hive",
        "bdpdwc010004:10087",
        "IDE_johnnwang_21",
    )


def test_rest_exec_id_round_trip() -> None:
    encoded = p.encode_rest_exec_id("linkis-cg-entrance", "127.0.0.1:9104", "IDE_hadoop_spark_0")

    assert encoded == REST_ID
    decoded = p.decode_exec_id(REST_ID)
    assert decoded.form == "rest"
    assert decoded.app == "linkis-cg-entrance"
    assert decoded.instance == "127.0.0.1:9104"
    assert decoded.job_id == "IDE_hadoop_spark_0"


def test_rest_exec_id_joins_several_instances() -> None:
    encoded = p.encode_rest_exec_id("app", ["h1:1", "h2:2"], "IDE_u_spark_1")

    assert p.decode_exec_id(encoded).instance == "h1:1_h2:2"


def test_waiting_size_exec_id_adds_the_creator_only_for_three_part_ids() -> None:
    assert p.encode_waiting_exec_id("spark", "h:1", "IDE_u_1", creator="IDE") == (
        p.encode_legacy_exec_id("IDE", "spark", "h:1", "IDE_u_1")
    )
    assert p.encode_waiting_exec_id("spark", "h:1", "IDE_u_spark_1", creator="IDE") == (
        "0503sparkh:1IDE_u_spark_1"
    )


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "99", "030514IDE", "exec_id", "exec_id018014linkis-cg-entrance127.0.0.1:9104"],
)
def test_bad_exec_ids_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="not a Linkis execID"):
        p.decode_exec_id(bad)


# --------------------------------------------------------------------------- variables


def test_scan_variables_uses_linkis_name_grammar() -> None:
    code = (
        "select * from t where dt = '${run_date}' and x > ${ limit } and y = ${a.b_c}"
        " and z = ${run_date - 1} and ${9bad} and $notvar and ${run_date}"
    )

    assert p.scan_variables(code) == ["run_date", "limit", "a.b_c"]


def test_scan_variables_sees_operators() -> None:
    match = p.VARIABLE_PATTERN.search("${n * 2}")

    assert match is not None
    assert (match["name"], match["op"], match["operand"]) == ("n", "*", "2")


# --------------------------------------------------------------------------- log lines


def test_log_line_format_and_level() -> None:
    line = p.format_log_line("info", "Your job is accepted", datetime(2026, 12, 1, 8, 5, 3, 42000))

    assert line == "2026-12-01 08:05:03.042 INFO Your job is accepted"
    assert p.log_level_of(line) == "INFO"
    assert p.log_level_of("2026-12-01 08:05:03.042 SYSTEM-ERROR boom") == "ERROR"
    assert p.log_level_of("Traceback (most recent call last):") is None


def test_known_run_types() -> None:
    assert p.known_run_type("spark") == "sql"
    assert p.known_run_type("Spark-3.4.1") == "sql"
    assert p.known_run_type("hive") == "hql"
    assert p.known_run_type("mydb") is None
