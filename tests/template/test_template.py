"""Checks of template.yaml: least privilege, no lost messages, the Lambda build, and a clean cfn-lint.

Run with `python3 -m pytest tests/template -q` from the repository root.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

# Action verbs that change something: such an action must never get Resource "*".
WRITE_VERBS = ("Put", "Create", "Delete", "Send", "Pass", "Add", "Tag", "Update", "Start")

FUNCTIONS = {
    "OnUploadFunction": "on-upload",
    "OnImportFunction": "on-import",
    "StartSweepFunction": "start-sweep",
    "OnTrainingFunction": "on-training",
    "ReconcileFunction": "reconcile",
}
# The functions that run the import logic, and those that run the sweep logic.
# The reconciler drives both sides forward.
IMPORT_FUNCTIONS = ("OnUploadFunction", "OnImportFunction")
SWEEP_FUNCTIONS = ("StartSweepFunction", "OnTrainingFunction")
IMPORT_PREFIXES = {"pending/*", "imports/*", "imported/*", "open/imports/*", "lineage/*"}
SWEEP_PREFIXES = {"sweeps/*", "open/sweeps/*"}
# Metrics that the reconciler emits (embedded metric format, no dimensions) -> their alarm.
RECONCILER_ALARMS = {
    "ImportsStalled": "ImportStalledAlarm",
    "SweepsStalled": "SweepStalledAlarm",
    "OldestPendingUploadAgeSeconds": "PendingUploadAgeAlarm",
}
# Counts of domain events (embedded metric format, no dimensions) -> their alarm.
EVENT_ALARMS = {
    "ImportsFailed": "ImportFailedAlarm",
    "SweepsBlocked": "SweepBlockedAlarm",
}
# Work queue -> (its dead-letter queue, the function that consumes it).
WORK_QUEUES = {
    "UploadQueue": ("UploadDeadLetterQueue", "OnUploadFunction"),
    "WatchQueue": ("WatchDeadLetterQueue", "OnImportFunction"),
    "TickQueue": ("TickDeadLetterQueue", "OnTrainingFunction"),
}
POLICY_DOCUMENT_TYPES = {
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy",
}


# ----------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def tpl() -> dict:
    template, matches = decode(str(TEMPLATE))
    assert template is not None and not matches, f"template.yaml does not parse: {matches}"
    return template


def resources(tpl: dict, type_: str) -> dict[str, dict]:
    return {k: v for k, v in tpl["Resources"].items() if v.get("Type") == type_}


def props(tpl: dict, logical_id: str) -> dict:
    return tpl["Resources"][logical_id].get("Properties", {})


def function_setting(tpl: dict, logical_id: str, name: str) -> Any:
    """A function property, falling back to Globals.Function (SAM's merge for scalars)."""
    own = props(tpl, logical_id)
    if name in own:
        return own[name]
    return tpl.get("Globals", {}).get("Function", {}).get(name)


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def get_att(logical_id: str, attribute: str) -> dict:
    return {"Fn::GetAtt": [logical_id, attribute]}


def statements(tpl: dict) -> Iterator[tuple[str, dict]]:
    """Every policy statement in the template, with where it lives."""
    for logical_id, res in tpl["Resources"].items():
        type_ = res.get("Type")
        p = res.get("Properties", {})
        documents: list[tuple[str, Any]] = []
        if type_ == "AWS::Serverless::Function":
            for i, policy in enumerate(as_list(p.get("Policies"))):
                documents.append((f"{logical_id}.Policies[{i}]", policy))
        elif type_ == "AWS::IAM::Role":
            for i, policy in enumerate(as_list(p.get("Policies"))):
                documents.append((f"{logical_id}.Policies[{i}]", policy.get("PolicyDocument")))
        elif type_ in POLICY_DOCUMENT_TYPES:
            documents.append((f"{logical_id}.PolicyDocument", p.get("PolicyDocument")))
        for where, doc in documents:
            assert isinstance(doc, dict) and "Statement" in doc, (
                f"{where}: only inline policy documents are allowed, so that these tests can see every "
                f"permission (got {doc!r})"
            )
            for j, statement in enumerate(as_list(doc["Statement"])):
                yield f"{where}.Statement[{j}] ({statement.get('Sid', 'no Sid')})", statement


def allow_statements(tpl: dict) -> Iterator[tuple[str, dict]]:
    for where, statement in statements(tpl):
        if statement.get("Effect") == "Allow":
            yield where, statement


def actions(statement: dict) -> list[str]:
    return [str(a) for a in as_list(statement.get("Action"))]


def is_write(action: str) -> bool:
    verb = action.split(":", 1)[-1]
    return verb.startswith(WRITE_VERBS)


def string_leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from string_leaves(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from string_leaves(v)


def function_policy_statements(tpl: dict, logical_id: str) -> list[dict]:
    return [s for doc in as_list(props(tpl, logical_id).get("Policies")) for s in as_list(doc["Statement"])]


def grants(tpl: dict, logical_id: str) -> set[tuple[str, str, str, str]]:
    """A function's permissions as (effect, action, one resource, condition) rows, whatever the Sids and grouping."""
    rows = set()
    for statement in function_policy_statements(tpl, logical_id):
        resource = statement.get("Resource")
        # A literal list splits into its items; an intrinsic (Fn::Split, ...) stays whole.
        items = resource if isinstance(resource, list) else [resource]
        condition = json.dumps(statement.get("Condition"), sort_keys=True)
        for action in actions(statement):
            for item in items:
                rows.add((statement["Effect"], action, json.dumps(item, sort_keys=True), condition))
    return rows


def artifact_object_prefixes(tpl: dict, logical_id: str) -> set[str]:
    """The artifacts-bucket key patterns that a function may write."""
    found = set()
    for statement in function_policy_statements(tpl, logical_id):
        if "s3:PutObject" in actions(statement):
            for leaf in string_leaves(statement["Resource"]):
                m = re.fullmatch(r"\$\{ArtifactsBucket\.Arn\}/(.+)", leaf)
                assert m, f"{logical_id}: s3:PutObject outside the artifacts bucket: {leaf}"
                found.add(m.group(1))
    return found


def alarms_in(tpl: dict, namespace: str) -> dict[str, dict]:
    return {
        name: alarm["Properties"]
        for name, alarm in resources(tpl, "AWS::CloudWatch::Alarm").items()
        if alarm["Properties"].get("Namespace") == namespace
    }


ALARM_ACTIONS = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


# ---------------------------------------------------------- least privilege


def test_allow_statements_use_no_wildcard_action_and_no_not_elements(tpl):
    checked = 0
    for where, statement in allow_statements(tpl):
        checked += 1
        assert "NotAction" not in statement and "NotResource" not in statement, f"{where}: Allow with NotAction/NotResource"
        for action in actions(statement):
            assert action != "*" and not re.fullmatch(r"[a-z0-9-]+:\*", action), f"{where}: wildcard action {action!r}"
    assert checked > 0


def test_write_actions_never_get_resource_star(tpl):
    writes = 0
    for where, statement in allow_statements(tpl):
        written = [a for a in actions(statement) if is_write(a)]
        if not written:
            continue
        writes += 1
        leaves = list(string_leaves(statement.get("Resource")))
        assert leaves, f"{where}: {written} without a Resource"
        assert "*" not in leaves, f"{where}: write action(s) {written} on Resource '*'"
    assert writes > 0


def test_pass_role_only_for_the_training_role_and_only_to_sagemaker(tpl):
    found = []
    for where, statement in allow_statements(tpl):
        passes = [a for a in actions(statement) if fnmatch.fnmatchcase("iam:passrole", a.lower())]
        if not passes:
            continue
        found.append(where.split(".", 1)[0])
        assert passes == ["iam:PassRole"], f"{where}: iam:PassRole must be named exactly, not via {passes}"
        assert actions(statement) == ["iam:PassRole"], f"{where}: keep iam:PassRole in a statement of its own"
        assert as_list(statement.get("Resource")) == [{"Ref": "TrainingRoleArn"}], f"{where}: PassRole resource"
        assert statement.get("Condition") == {
            "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
        }, f"{where}: PassRole condition"
    assert sorted(found) == ["OnTrainingFunction", "ReconcileFunction", "StartSweepFunction"]


def test_capacity_preflight_reads_quotas_and_training_plans_only(tpl):
    sub = lambda text: json.dumps({"Fn::Sub": text}, sort_keys=True)  # noqa: E731
    expected = {
        ("Allow", "servicequotas:ListServiceQuotas", json.dumps("*"), "null"),
        (
            "Allow",
            "servicequotas:GetServiceQuota",
            sub("arn:${AWS::Partition}:servicequotas:${AWS::Region}:${AWS::AccountId}:sagemaker/*"),
            "null",
        ),
        (
            "Allow",
            "sagemaker:DescribeTrainingPlan",
            sub("arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:training-plan/*"),
            "null",
        ),
    }
    for function in ["StartSweepFunction", "OnTrainingFunction", "ReconcileFunction"]:
        rows = grants(tpl, function)
        capacity = {r for r in rows if r[1].startswith("servicequotas:") or r[1] == "sagemaker:DescribeTrainingPlan"}
        assert capacity == expected, function
    for function in ["OnUploadFunction", "OnImportFunction"]:
        assert not any(r[1].startswith("servicequotas:") for r in grants(tpl, function)), function


def test_paired_functions_have_identical_permissions(tpl):
    # on-upload and on-import run the same import logic; start-sweep and on-training the same sweep logic.
    assert props(tpl, "OnUploadFunction")["Policies"] == props(tpl, "OnImportFunction")["Policies"]
    assert props(tpl, "StartSweepFunction")["Policies"] == props(tpl, "OnTrainingFunction")["Policies"]


def test_reconciler_has_exactly_the_union_of_the_import_and_sweep_permissions(tpl):
    # It drives both sides forward with the same code paths: nothing more, nothing less.
    union = grants(tpl, "OnUploadFunction") | grants(tpl, "StartSweepFunction")
    reconciler = grants(tpl, "ReconcileFunction")
    assert reconciler - union == set(), f"the reconciler has permissions neither pair has: {sorted(reconciler - union)}"
    assert union - reconciler == set(), f"the reconciler lacks permissions of a pair: {sorted(union - reconciler)}"


def test_artifact_prefixes_are_split_between_import_and_sweep_functions(tpl):
    for logical_id in IMPORT_FUNCTIONS:
        assert artifact_object_prefixes(tpl, logical_id) == IMPORT_PREFIXES, logical_id
    for logical_id in SWEEP_FUNCTIONS:
        assert artifact_object_prefixes(tpl, logical_id) == SWEEP_PREFIXES, logical_id
    assert IMPORT_PREFIXES.isdisjoint(SWEEP_PREFIXES)
    # Only the reconciler touches both sides.
    assert artifact_object_prefixes(tpl, "ReconcileFunction") == IMPORT_PREFIXES | SWEEP_PREFIXES

    # Every top-level key prefix the Rust code builds (format!("<prefix>/{...}")) is granted
    # to some function: a new prefix in the code must come with its permission here.
    used = set()
    for src in (ROOT / "shared").rglob("*.rs"):
        if src.name == "tests.rs" or "tests" in src.relative_to(ROOT).parts:
            continue
        used |= set(re.findall(r'format!\("([a-z][a-z0-9_-]*)/\{', src.read_text()))
    assert used, "found no key prefixes in shared/"
    granted = {p.split("/", 1)[0] for p in IMPORT_PREFIXES | SWEEP_PREFIXES}
    assert used <= granted, f"prefixes used by the code but not granted in template.yaml: {sorted(used - granted)}"


def test_functions_that_read_artifacts_may_list_the_bucket_unconditionally(tpl):
    # Without s3:ListBucket, a GetObject on a missing key answers 403 instead of 404. A GetObject
    # request has no s3:prefix, so a prefix condition on ListBucket would bring the 403 back.
    readers = []
    for logical_id in FUNCTIONS:
        statements_ = function_policy_statements(tpl, logical_id)
        reads = [
            s
            for s in statements_
            if "s3:GetObject" in actions(s)
            and any(leaf.startswith("${ArtifactsBucket.Arn}/") for leaf in string_leaves(s.get("Resource")))
        ]
        if not reads:
            continue
        readers.append(logical_id)
        listings = [s for s in statements_ if "s3:ListBucket" in actions(s)]
        assert listings, f"{logical_id}: s3:GetObject on the artifacts bucket without s3:ListBucket"
        for listing in listings:
            assert listing["Resource"] == get_att("ArtifactsBucket", "Arn"), f"{logical_id}: ListBucket resource"
            assert "Condition" not in listing, f"{logical_id}: ListBucket must have no Condition"
    assert sorted(readers) == sorted(FUNCTIONS)


def test_sagemaker_and_fsx_writes_are_scoped_to_parameters(tpl):
    def resource_for(logical_id: str, action: str) -> list:
        return [s["Resource"] for s in function_policy_statements(tpl, logical_id) if action in actions(s)]

    for fn in (*SWEEP_FUNCTIONS, "ReconcileFunction"):
        (jobs,) = resource_for(fn, "sagemaker:CreateTrainingJob")
        assert ":training-job/" in str(jobs)
    for fn in (*IMPORT_FUNCTIONS, "ReconcileFunction"):
        fsx = resource_for(fn, "fsx:CreateDataRepositoryTask")
        assert any("FileSystemIds" in str(r) and ":file-system/" in str(r) for r in fsx)


# The training-job actions the functions call, and the tag condition each must carry
# (the Service Authorization Reference: CreateTrainingJob and AddTags take aws:RequestTag,
# the training-job resource type takes aws:ResourceTag).
STACK_TAG = {"Ref": "AWS::StackName"}
TRAINING_JOB_CONDITIONS = {
    "sagemaker:CreateTrainingJob": {"StringEquals": {"aws:RequestTag/retrain:stack": STACK_TAG}},
    "sagemaker:AddTags": {
        "StringEquals": {"aws:RequestTag/retrain:stack": STACK_TAG, "sagemaker:TaggingAction": "CreateTrainingJob"}
    },
    "sagemaker:DescribeTrainingJob": {"StringEquals": {"aws:ResourceTag/retrain:stack": STACK_TAG}},
}


def test_training_jobs_are_scoped_by_the_stack_tag_not_by_pipeline_names(tpl):
    # A pipeline added to the config must not need a stack update.
    assert "PipelineNames" not in tpl["Parameters"]
    assert "PipelineNames" not in json.dumps(tpl["Resources"])
    assert tpl["Globals"]["Function"]["Environment"]["Variables"]["RETRAIN_STACK_NAME"] == STACK_TAG
    jobs = {"Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:training-job/*"}
    for fn in (*SWEEP_FUNCTIONS, "ReconcileFunction"):
        on_jobs = [s for s in function_policy_statements(tpl, fn) if ":training-job/" in json.dumps(s.get("Resource"))]
        seen = {}
        for statement in on_jobs:
            (action,) = actions(statement)  # one action per statement: each has its own condition key
            assert statement["Resource"] == jobs, f"{fn} {action}"
            seen[action] = statement.get("Condition")
        assert seen == TRAINING_JOB_CONDITIONS, fn
    # Nothing else may touch training jobs: no other statement names them, and the only
    # training-job action on "*" is the read-only listing (it has no resource type).
    for fn in FUNCTIONS:
        for statement in function_policy_statements(tpl, fn):
            for action in actions(statement):
                if "TrainingJob" in action and ":training-job/" not in json.dumps(statement.get("Resource")):
                    assert action == "sagemaker:ListTrainingJobs", f"{fn}: {action}"


def upload_route_statements(tpl: dict) -> tuple[dict, dict]:
    """The UploadQueuePolicy statement of the EventBridge route and that of the Notification route."""
    policy = props(tpl, "UploadQueuePolicy")
    assert policy["Queues"] == [{"Ref": "UploadQueue"}]
    (chosen,) = as_list(policy["PolicyDocument"]["Statement"])
    condition, eventbridge, notification = chosen["Fn::If"]
    assert condition == "UploadViaEventBridge"
    return eventbridge, notification


def test_upload_source_defaults_to_eventbridge_and_keeps_the_notification_route(tpl):
    parameter = tpl["Parameters"]["UploadSource"]
    assert parameter["Default"] == "EventBridge"
    assert parameter["AllowedValues"] == ["EventBridge", "Notification"]
    assert tpl["Conditions"]["UploadViaEventBridge"] == {"Fn::Equals": [{"Ref": "UploadSource"}, "EventBridge"]}
    assert tpl["Resources"]["UploadRule"]["Condition"] == "UploadViaEventBridge"
    assert tpl["Outputs"]["UploadRuleArn"]["Condition"] == "UploadViaEventBridge"


def test_upload_queue_accepts_only_the_upload_rule_or_only_the_data_bucket(tpl):
    eventbridge, notification = upload_route_statements(tpl)
    for statement in (eventbridge, notification):
        assert statement["Effect"] == "Allow"
        assert actions(statement) == ["sqs:SendMessage"]
        assert statement["Resource"] == get_att("UploadQueue", "Arn")
    assert eventbridge["Principal"] == {"Service": "events.amazonaws.com"}
    assert eventbridge["Condition"] == {"ArnEquals": {"aws:SourceArn": get_att("UploadRule", "Arn")}}
    assert notification["Principal"] == {"Service": "s3.amazonaws.com"}
    assert notification["Condition"] == {
        "ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${DataBucketName}"}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }


def test_the_upload_rule_sends_the_data_bucket_s_object_created_events_to_the_upload_queue(tpl):
    rule = props(tpl, "UploadRule")
    assert "EventBusName" not in rule, "S3 sends its events to the default bus only"
    assert rule["State"] == "ENABLED"
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"] == {"name": [{"Ref": "DataBucketName"}]}
    # Filtered on the pipelines' common prefix when one is given, else the whole bucket.
    assert pattern["detail"]["object"] == {
        "Fn::If": ["HasUploadKeyPrefix", {"key": [{"prefix": {"Ref": "UploadKeyPrefix"}}]}, {"Ref": "AWS::NoValue"}]
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == get_att("UploadQueue", "Arn")
    assert "InputTransformer" not in target and "Input" not in target, "on-upload decodes the event as S3 sends it"
    assert target["DeadLetterConfig"] == {"Arn": get_att("EventDeadLetterQueue", "Arn")}
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400
    # The batching window stays where it was: on the queue's event source, for both routes.
    p = props(tpl, "OnUploadFunction")["Events"]["Uploads"]["Properties"]
    assert p["Queue"] == get_att("UploadQueue", "Arn")


# ------------------------------------------------------- nothing gets lost


def test_every_sqs_event_source_reports_batch_item_failures(tpl):
    consumers = {}
    for logical_id in FUNCTIONS:
        for name, event in props(tpl, logical_id).get("Events", {}).items():
            if event["Type"] != "SQS":
                continue
            p = event["Properties"]
            assert "ReportBatchItemFailures" in p.get("FunctionResponseTypes", []), f"{logical_id}.{name}"
            consumers[p["Queue"]["Fn::GetAtt"][0]] = logical_id
    assert consumers == {queue: fn for queue, (_, fn) in WORK_QUEUES.items()}


def test_upload_batching_comes_from_parameters(tpl):
    p = props(tpl, "OnUploadFunction")["Events"]["Uploads"]["Properties"]
    assert p["BatchSize"] == {"Ref": "UploadBatchSize"}
    assert p["MaximumBatchingWindowInSeconds"] == {"Ref": "UploadBatchingWindowSeconds"}


def test_work_queues_redrive_to_a_dead_letter_queue(tpl):
    for queue, (dlq, consumer) in WORK_QUEUES.items():
        p = props(tpl, queue)
        assert p.get("RedrivePolicy") == {"deadLetterTargetArn": get_att(dlq, "Arn"), "maxReceiveCount": 5}, queue
        timeout = function_setting(tpl, consumer, "Timeout")
        assert p["VisibilityTimeout"] >= 6 * timeout, f"{queue}: VisibilityTimeout < 6 x {consumer} timeout"
        assert tpl["Resources"][dlq]["Type"] == "AWS::SQS::Queue"
        assert props(tpl, dlq)["MessageRetentionPeriod"] == 14 * 24 * 3600, dlq


def dead_letter_queues(tpl: dict) -> set[str]:
    """Queues that receive what something else could not process."""
    found = {props(tpl, q)["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] for q in WORK_QUEUES}
    for logical_id in FUNCTIONS:
        p = props(tpl, logical_id)
        if "DeadLetterQueue" in p:
            found.add(p["DeadLetterQueue"]["TargetArn"]["Fn::GetAtt"][0])
        for event in p.get("Events", {}).values():
            config = event.get("Properties", {}).get("DeadLetterConfig")
            if config:
                found.add(config["Arn"]["Fn::GetAtt"][0])
    return found


def test_every_dead_letter_queue_has_an_alarm(tpl):
    watched = {}
    for name, p in alarms_in(tpl, "AWS/SQS").items():
        (dimension,) = p["Dimensions"]
        assert dimension["Name"] == "QueueName"
        watched[dimension["Value"]["Fn::GetAtt"][0]] = p
    dlqs = dead_letter_queues(tpl)
    assert len(dlqs) >= 3
    for dlq in dlqs:
        assert dlq in watched, f"{dlq} has no alarm"
        p = watched[dlq]
        assert p["Namespace"] == "AWS/SQS"
        assert p["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert p["Statistic"] in ("Sum", "Maximum")
        assert (p["Period"], p["EvaluationPeriods"], p["Threshold"]) == (60, 1, 0)
        assert p["ComparisonOperator"] == "GreaterThanThreshold"
        assert p["TreatMissingData"] == "notBreaching"
        assert p["AlarmActions"] == ALARM_ACTIONS


def test_every_rule_that_dead_letters_may_send_to_its_queue(tpl):
    # SAM names a function's rule <function id><event id>; EventBridge can only dead-letter an
    # event to the queue if the queue policy lists that rule.
    (statement,) = as_list(props(tpl, "EventDeadLetterQueuePolicy")["PolicyDocument"]["Statement"])
    allowed = set()
    for arn in statement["Condition"]["ArnEquals"]["aws:SourceArn"]:
        if "Fn::If" in arn:  # a rule of one upload route only
            condition, arn, otherwise = arn["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}
            assert tpl["Resources"][arn["Fn::GetAtt"][0]]["Condition"] == condition
        allowed.add(arn["Fn::GetAtt"][0])
    rules = set()
    for logical_id in FUNCTIONS:
        for name, event in props(tpl, logical_id).get("Events", {}).items():
            config = event.get("Properties", {}).get("DeadLetterConfig")
            if config:
                assert event["Type"] in ("EventBridgeRule", "Schedule"), f"{logical_id}.{name}"
                assert config["Arn"] == get_att("EventDeadLetterQueue", "Arn"), f"{logical_id}.{name}"
                rules.add(f"{logical_id}{name}")
    assert "ReconcileFunctionSchedule" in rules
    for logical_id, rule in resources(tpl, "AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            if "DeadLetterConfig" in target:
                assert target["DeadLetterConfig"]["Arn"] == get_att("EventDeadLetterQueue", "Arn"), logical_id
                rules.add(logical_id)
    assert "UploadRule" in rules
    assert rules == allowed, f"rules missing from EventDeadLetterQueuePolicy: {sorted(rules - allowed)}, extra: {sorted(allowed - rules)}"


def test_all_queues_are_encrypted(tpl):
    queues = resources(tpl, "AWS::SQS::Queue")
    assert set(WORK_QUEUES) | dead_letter_queues(tpl) <= set(queues)
    for name, queue in queues.items():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True, name


def test_training_job_events_reach_on_training_with_retries_and_a_dead_letter_queue(tpl):
    event = props(tpl, "OnTrainingFunction")["Events"]["TrainingJobStateChange"]
    assert event["Type"] == "EventBridgeRule"
    p = event["Properties"]
    assert "EventBusName" not in p  # SageMaker publishes on the default bus
    assert p["Pattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Training Job State Change"],
        "detail": {
            "TrainingJobStatus": ["Completed", "Failed", "Stopped"],
            "Tags": {"retrain:sweep": [{"exists": True}]},
        },
    }
    assert p["RetryPolicy"] and p["DeadLetterConfig"]["Arn"]


def test_start_sweep_listens_on_the_custom_bus_and_the_schedule(tpl):
    events = props(tpl, "StartSweepFunction")["Events"]
    bus_rules = [e for e in events.values() if e["Type"] == "EventBridgeRule"]
    (rule,) = bus_rules
    assert rule["Properties"]["EventBusName"] == {"Ref": "EventBus"}
    assert rule["Properties"]["Pattern"] == {"source": ["retrain"], "detail-type": ["DataImportCompleted", "StartSweep"]}
    (schedule,) = [e for e in events.values() if e["Type"] in ("Schedule", "ScheduleV2")]
    assert schedule["Properties"]["State"] == {"Ref": "ScheduleState"}
    assert {"Ref": "ScheduleExpression"} in schedule["Properties"].values()


def test_reconciler_runs_on_its_own_always_enabled_schedule(tpl):
    events = props(tpl, "ReconcileFunction")["Events"]
    (schedule,) = events.values()
    assert schedule["Type"] == "Schedule"
    p = schedule["Properties"]
    assert p["Schedule"] == {"Ref": "ReconcileSchedule"}
    assert p["State"] == "ENABLED"
    # The same delivery guarantees as start-sweep's schedule.
    start_sweep = props(tpl, "StartSweepFunction")["Events"]["Schedule"]["Properties"]
    assert p["RetryPolicy"] == start_sweep["RetryPolicy"]
    assert p["DeadLetterConfig"] == start_sweep["DeadLetterConfig"] == {"Arn": get_att("EventDeadLetterQueue", "Arn")}
    assert props(tpl, "ReconcileFunction")["DeadLetterQueue"] == props(tpl, "StartSweepFunction")["DeadLetterQueue"]
    parameter = tpl["Parameters"]["ReconcileSchedule"]
    assert (parameter["Type"], parameter["Default"]) == ("String", "rate(5 minutes)")
    # It walks everything that is open, within one run.
    assert function_setting(tpl, "ReconcileFunction", "Timeout") == 300


def test_reconciler_metrics_have_alarms(tpl):
    alarms = alarms_in(tpl, "Retrain")
    assert {p["MetricName"]: name for name, p in alarms.items()} == RECONCILER_ALARMS | EVENT_ALARMS
    for metric, name in (RECONCILER_ALARMS | EVENT_ALARMS).items():
        p = alarms[name]
        # The embedded-metric records have no dimensions; an alarm with any would never see data.
        assert "Dimensions" not in p, name
        # Gauges alarm on their level, event counts on any in the period.
        assert p["Statistic"] == ("Maximum" if metric in RECONCILER_ALARMS else "Sum"), name
        assert p["Period"] == 300, name
        assert p["ComparisonOperator"] == "GreaterThanThreshold", name
        assert p["TreatMissingData"] == "notBreaching", name
        assert p["AlarmActions"] == ALARM_ACTIONS, name
    for name in ("ImportStalledAlarm", "SweepStalledAlarm"):
        assert (alarms[name]["EvaluationPeriods"], alarms[name]["Threshold"]) == (1, 0), name
    age = alarms["PendingUploadAgeAlarm"]
    assert age["EvaluationPeriods"] == 3
    assert age["Threshold"] == {"Ref": "PendingUploadAgeAlarmSeconds"}
    parameter = tpl["Parameters"]["PendingUploadAgeAlarmSeconds"]
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"]) == ("Number", 7200, 60)


# ------------------------------------------------------------------ storage


def test_artifacts_bucket_is_private_encrypted_versioned_and_tls_only(tpl):
    p = props(tpl, "ArtifactsBucket")
    assert p["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    rules = p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules and all(
        r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms", "aws:kms:dsse") for r in rules
    )
    assert p["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert p["VersioningConfiguration"]["Status"] == "Enabled"

    (policy,) = [v["Properties"] for v in resources(tpl, "AWS::S3::BucketPolicy").values()]
    assert policy["Bucket"] == {"Ref": "ArtifactsBucket"}
    denies = [s for s in as_list(policy["PolicyDocument"]["Statement"]) if s["Effect"] == "Deny"]
    assert any(s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


# ---------------------------------------------------------------- functions


def test_every_function_is_a_rust_al2023_build_for_the_architecture_parameter(tpl):
    architecture = tpl["Parameters"]["Architecture"]
    assert architecture["Default"] == "arm64"
    assert architecture["AllowedValues"] == ["arm64", "x86_64"]
    functions = resources(tpl, "AWS::Serverless::Function")
    assert set(functions) == set(FUNCTIONS)
    for logical_id, binary in FUNCTIONS.items():
        assert function_setting(tpl, logical_id, "Runtime") == "provided.al2023", logical_id
        assert function_setting(tpl, logical_id, "Architectures") == [{"Ref": "Architecture"}], logical_id
        assert function_setting(tpl, logical_id, "Handler") == "bootstrap", logical_id
        assert function_setting(tpl, logical_id, "CodeUri") == ".", logical_id
        metadata = functions[logical_id]["Metadata"]
        assert metadata["BuildMethod"] == "rust-cargolambda", logical_id
        assert metadata["BuildProperties"]["Binary"] == binary, logical_id
        cargo = (ROOT / "functions" / binary / "Cargo.toml").read_text()
        assert re.search(rf'(?m)^name\s*=\s*"{re.escape(binary)}"', cargo), f"no crate named {binary}"


def test_globals_set_every_variable_the_functions_read(tpl):
    variables = tpl["Globals"]["Function"]["Environment"]["Variables"]
    settings = (ROOT / "shared" / "aws" / "src" / "settings.rs").read_text()
    wanted = set(re.findall(r'pub const \w+_VAR: &str = "([A-Z0-9_]+)";', settings))
    assert wanted, "no *_VAR constants found in shared/aws/src/settings.rs"
    assert wanted | {"RUST_LOG"} <= set(variables)
    assert variables["RETRAIN_CONFIG"] == {"Fn::Sub": "s3://${ConfigBucketName}/${ConfigObjectKey}"}
    assert variables["RUST_LOG"] == {"Ref": "LogLevel"}


def test_outputs(tpl):
    outputs = tpl["Outputs"]
    for name in (
        "ArtifactsBucketName",
        "EventBusName",
        "EventBusArn",
        "UploadQueueArn",
        "UploadQueueUrl",
        "WatchQueueUrl",
        "TickQueueUrl",
        "UploadDeadLetterQueueUrl",
        "WatchDeadLetterQueueUrl",
        "TickDeadLetterQueueUrl",
        "BucketNotificationCommand",
        *(f"{fn}Name" for fn in FUNCTIONS),
    ):
        assert name in outputs, name
    condition, eventbridge, notification = outputs["BucketNotificationCommand"]["Value"]["Fn::If"]
    assert condition == "UploadViaEventBridge"
    eventbridge = eventbridge["Fn::Sub"]
    notification, variables = notification["Fn::Sub"]
    assert set(variables) == {"Filter"}
    for command in (eventbridge, notification):
        # PutBucketNotificationConfiguration replaces the whole configuration: the command
        # must put back what the bucket has, with retrain's part merged in.
        assert command.startswith("aws s3api put-bucket-notification-configuration --bucket ${DataBucketName} ")
        assert "$(aws s3api get-bucket-notification-configuration --bucket ${DataBucketName} --output json | jq -s '(add // {})" in command
    assert eventbridge.endswith('+ {"EventBridgeConfiguration": {}}\')"')
    assert "QueueConfigurations" not in eventbridge
    assert """select(.QueueArn != "${UploadQueue.Arn}")""" in notification
    assert """{"Id": "retrain-uploads", "QueueArn": "${UploadQueue.Arn}", "Events": ["s3:ObjectCreated:*"]${Filter}}""" in notification


# ------------------------------------------------------------------ linting


def cfn_lint_command() -> list[str]:
    # Prefer the cfn-lint of the interpreter running these tests (e.g. .venv/bin when the
    # Makefile runs .venv/bin/python without activating the venv), then the one on PATH.
    beside = Path(sys.executable).parent / "cfn-lint"
    exe = str(beside) if beside.is_file() else shutil.which("cfn-lint")
    if exe:
        return [exe]
    # cfn-lint has no `python -m cfnlint` entry point; call its console script's target.
    return [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())"]


def test_cfn_lint_is_clean():
    result = subprocess.run(
        [*cfn_lint_command(), "template.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_every_checkov_skip_is_justified(tpl: dict) -> None:
    skips = [
        (name, skip)
        for name, resource in tpl["Resources"].items()
        for skip in (resource.get("Metadata", {}).get("checkov", {}).get("skip") or [])
    ]
    assert skips, "no checkov skips found: the test would prove nothing"
    for name, skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", str(skip.get("id", ""))), f"{name}: {skip}"
        assert len(str(skip.get("comment", ""))) >= 40, f"{name} skips {skip.get('id')} without a reason"


def test_model_registry_writes_are_scoped_to_the_configured_groups(tpl):
    for fn in (*SWEEP_FUNCTIONS, "ReconcileFunction"):
        statements_ = function_policy_statements(tpl, fn)
        (registry,) = [s for s in statements_ if "sagemaker:CreateModelPackage" in actions(s)]
        text = str(registry["Resource"])
        assert "ModelPackageGroupNames" in text and ":model-package-group/" in text and ":model-package/" in text
        assert "*" not in list(string_leaves(registry["Resource"]))
        # AddTags on training jobs and groups only: never on every resource.
        for statement in statements_:
            if "sagemaker:AddTags" in actions(statement):
                assert "*" not in list(string_leaves(statement.get("Resource"))), fn


def test_lineage_is_written_by_the_import_side_and_retired_by_the_sweep_side(tpl):
    lineage = "${ArtifactsBucket.Arn}/lineage/*"

    def lineage_actions(logical_id: str) -> set[str]:
        return {
            a
            for st in function_policy_statements(tpl, logical_id)
            if lineage in string_leaves(st["Resource"])
            for a in actions(st)
        }

    for logical_id in IMPORT_FUNCTIONS:
        assert lineage_actions(logical_id) == {"s3:GetObject", "s3:PutObject"}, logical_id
    for logical_id in SWEEP_FUNCTIONS:
        assert lineage_actions(logical_id) == {"s3:GetObject", "s3:DeleteObject"}, logical_id


# ------------------------------------------------------------------ dashboard


def emitted_metrics() -> set[str]:
    """Every metric name the code writes in an embedded-metric record."""
    src = (ROOT / "shared/core/src/telemetry.rs").read_text()
    src = src.split("#[cfg(test)]", 1)[0]
    names = set(re.findall(r'"Name": "([A-Za-z]+)"', src))
    names |= set(re.findall(r'metric\("([A-Za-z]+)"\)', src))
    names |= set(re.findall(r'\("[A-Za-z]+", "([A-Za-z]+)"\)', src))
    names |= set(re.findall(r'\("([A-Za-z]+)", [^,()]+, "(?:Count|Seconds|None)"\)', src))
    return names


def dashboard(tpl: dict) -> dict:
    body = props(tpl, "Dashboard")["DashboardBody"]["Fn::Sub"]
    # Substitutions stand for names; any value keeps the JSON valid.
    return json.loads(re.sub(r"\$\{[^}]+\}", "X", body))


def dashboard_metrics(board: dict) -> tuple[set[str], set[str]]:
    """The Retrain metric names on the dashboard, and the other namespaces it shows."""
    names, namespaces = set(), set()
    for widget in board["widgets"]:
        for row in widget["properties"]["metrics"]:
            head = row[0]
            if isinstance(head, dict):
                names |= set(re.findall(r'MetricName="([A-Za-z]+)"', head["expression"]))
                assert "{Retrain," in head["expression"], head
            elif head == "Retrain":
                names.add(row[1])
            else:
                namespaces.add(head)
    return names, namespaces


def test_every_emitted_metric_is_on_the_dashboard_and_every_dashboard_metric_is_emitted(tpl):
    emitted = emitted_metrics()
    assert {"StartupSeconds", "OpenSweeps", "JobsLaunched", "JobsFailed", "ImportSeconds", "SweepInstanceHours"} <= emitted
    shown, _ = dashboard_metrics(dashboard(tpl))
    assert emitted - shown == set(), f"emitted but not on the dashboard: {sorted(emitted - shown)}"
    assert shown - emitted == set(), f"on the dashboard but never emitted: {sorted(shown - emitted)}"


def test_the_dashboard_shows_every_function_and_dead_letter_queue(tpl):
    body = props(tpl, "Dashboard")["DashboardBody"]["Fn::Sub"]
    _, namespaces = dashboard_metrics(dashboard(tpl))
    assert namespaces == {"AWS/Lambda", "AWS/SQS"}
    for fn in resources(tpl, "AWS::Serverless::Function"):
        assert body.count("${" + fn + "}") == 2, f"{fn}: errors and duration"
    for queue in resources(tpl, "AWS::SQS::Queue"):
        if "DeadLetter" in queue:
            assert "${" + queue + ".QueueName}" in body, queue
    # Per-pipeline start-up series come from a SEARCH over the job records' dimensions.
    assert "{Retrain,FileSystemType,Pipeline}" in body


# ------------------------------------------------------------------ event log


def test_every_domain_event_goes_to_the_event_log_with_a_set_retention(tpl):
    group = props(tpl, "EventLogGroup")
    assert group["RetentionInDays"] == {"Ref": "EventLogRetentionDays"}
    assert tpl["Parameters"]["EventLogRetentionDays"]["Default"] in tpl["Parameters"]["EventLogRetentionDays"]["AllowedValues"]
    rule = props(tpl, "EventLogRule")
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    assert rule["EventPattern"] == {"source": ["retrain"]}, "every domain event, whatever its type"
    (target,) = rule["Targets"]
    assert "log-group:${EventLogGroup}" in target["Arn"]["Fn::Sub"]
    # EventBridge writes under the group's resource policy, only for this rule.
    policy = json.loads(re.sub(r"\$\{[^}]+\}", "X", props(tpl, "EventLogPolicy")["PolicyDocument"]["Fn::Sub"]))
    (statement,) = policy["Statement"]
    assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": "X"}}
    assert "${EventLogRule.Arn}" in props(tpl, "EventLogPolicy")["PolicyDocument"]["Fn::Sub"]
    assert tpl["Outputs"]["EventLogGroupName"]["Value"] == {"Ref": "EventLogGroup"}
