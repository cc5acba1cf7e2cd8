import pytest
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from churn.core.errors import ChurnError
from churn.core.params import describe, load_params, parse_params
from conftest import REPO
from unit.ascii_locale import ascii_locale


def test_repository_params_are_valid(params):
    assert params.train.model == "logistic_regression"
    assert params.prepare.test_size == 0.2
    assert params.paths.contract == "data/prepared/contract.json"
    assert params.data.positive_label == "Yes"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda p: p["train"].update(n_estimtors=5),
            "params.yaml: train.n_estimtors: unknown key (allowed: class_weight, "
            "hist_gradient_boosting, logistic_regression, model, random_forest, seed)",
        ),
        (
            lambda p: p["prepare"].update(test_size=1.5),
            "params.yaml: prepare.test_size: Input should be less than 1 (got 1.5)",
        ),
        (
            lambda p: p["train"].update(model="xgboost"),
            "params.yaml: train.model: Input should be 'logistic_regression', 'random_forest' "
            "or 'hist_gradient_boosting' (got 'xgboost')",
        ),
        (lambda p: p["prepare"].pop("seed"), "params.yaml: prepare.seed: missing key"),
        (
            lambda p: p["prepare"].update(seed="42"),
            "params.yaml: prepare.seed: Input should be a valid integer (got '42')",
        ),
        (
            lambda p: p["train"]["random_forest"].update(n_estimators=0),
            "params.yaml: train.random_forest.n_estimators: Input should be greater than or "
            "equal to 1 (got 0)",
        ),
        (lambda p: p.pop("evaluate"), "params.yaml: evaluate: missing key"),
        (
            lambda p: p.update(extra={}),
            "params.yaml: extra: unknown key (allowed: data, decision, evaluate, featurize, "
            "monitor, paths, prepare, release, report, source, train)",
        ),
        # Bounds and cross-checks, each at its edge (issue #17: mutants these must kill).
        (
            lambda p: p["data"]["features"]["tenure"].update(min=5, max=1),
            "params.yaml: data.features.tenure: min 5.0 is greater than max 1.0",
        ),
        (
            lambda p: p["data"]["features"]["contract"].update(min=0),
            "params.yaml: data.features.contract: min/max apply to numeric columns only",
        ),
        (
            lambda p: p["data"]["features"]["tenure"].update(categories=["a"]),
            "params.yaml: data.features.tenure: categories apply to categorical columns only",
        ),
        (
            lambda p: p["data"].update(labels=["No", "Maybe"]),
            "params.yaml: data: labels must be two different values including positive_label 'Yes'",
        ),
        (
            lambda p: p["data"].update(labels=["No", "Yes", "Maybe"]),
            "params.yaml: data: labels must be two different values including positive_label 'Yes'",
        ),
        (
            lambda p: p["data"].update(labels=["Yes", "Yes"]),
            "params.yaml: data: labels must be two different values including positive_label 'Yes'",
        ),
        (
            lambda p: p["report"].update(confidence=1.0),
            "params.yaml: report.confidence: Input should be less than 1 (got 1.0)",
        ),
        (
            lambda p: p["report"].update(confidence=0.0),
            "params.yaml: report.confidence: Input should be greater than 0 (got 0.0)",
        ),
        (
            lambda p: p["evaluate"].update(calibration_bins=1),
            "params.yaml: evaluate.calibration_bins: Input should be greater than or equal to 2 "
            "(got 1)",
        ),
        (
            lambda p: p["evaluate"].update(calibration_bins=101),
            "params.yaml: evaluate.calibration_bins: Input should be less than or equal to 100 "
            "(got 101)",
        ),
        (
            lambda p: p["prepare"].update(seed=2**32),
            "params.yaml: prepare.seed: Input should be less than or equal to 4294967295 "
            "(got 4294967296)",
        ),
        # Not a real number: .nan compares false to every bound, .inf is no JSON.
        (
            lambda p: p["data"]["features"]["tenure"].update(min=float("nan")),
            "params.yaml: data.features.tenure.min: Input should be a finite number "
            "(got nan; null is allowed too)",
        ),
        (
            lambda p: p["data"]["features"]["tenure"].update(max=float("inf")),
            "params.yaml: data.features.tenure.max: Input should be a finite number "
            "(got inf; null is allowed too)",
        ),
        (
            lambda p: p["release"].update(minimum=float("nan")),
            "params.yaml: release.minimum: Input should be a finite number (got nan)",
        ),
        (
            lambda p: p["decision"].update(value=float("inf")),
            "params.yaml: decision.value: Input should be a finite number (got inf)",
        ),
        # scikit-learn refuses an infinite l2_regularization at fit time, with a traceback.
        (
            lambda p: p["train"]["hist_gradient_boosting"].update(l2_regularization=float("inf")),
            "params.yaml: train.hist_gradient_boosting.l2_regularization: Input should be a "
            "finite number (got inf)",
        ),
        (
            lambda p: p["monitor"].update(psi=float("inf")),
            "params.yaml: monitor.psi: Input should be a finite number (got inf)",
        ),
        # An empty name names nothing: a path "" is the working directory, an id "" a column
        # the file never has, and no features at all leaves nothing to train on.
        (
            lambda p: p["paths"].update(raw=""),
            "params.yaml: paths.raw: String should have at least 1 character (got '')",
        ),
        (
            lambda p: p["data"].update(id=""),
            "params.yaml: data.id: String should have at least 1 character "
            "(got ''; null is allowed too)",
        ),
        (
            lambda p: p["data"].update(features={}),
            "params.yaml: data.features: Dictionary should have at least 1 item after "
            "validation, not 0, or: Input should be 'infer' (got {})",
        ),
        (
            lambda p: p["data"]["features"]["contract"].update(categories=["One year", ""]),
            "params.yaml: data.features.contract.categories.1: String should have at least 1 "
            "character (got '')",
        ),
        (
            lambda p: p["evaluate"].update(slices=["contract", "tenure", "contract"]),
            "params.yaml: evaluate.slices: listed more than once: 'contract'",
        ),
        # The decision section (issue 16).
        (
            lambda p: p["decision"].update(contact_cost=-0.01),
            "params.yaml: decision.contact_cost: Input should be greater than or equal to 0 "
            "(got -0.01)",
        ),
        (
            lambda p: p["decision"].update(incentive_cost=-1.0),
            "params.yaml: decision.incentive_cost: Input should be greater than or equal to 0 "
            "(got -1.0)",
        ),
        (
            lambda p: p["decision"].update(value=-1.0),
            "params.yaml: decision.value: Input should be greater than or equal to 0 (got -1.0)",
        ),
        (
            lambda p: p["decision"].update(retention_rate=1.01),
            "params.yaml: decision.retention_rate: Input should be less than or equal to 1 "
            "(got 1.01)",
        ),
        (
            lambda p: p["decision"].update(retention_rate=-0.1),
            "params.yaml: decision.retention_rate: Input should be greater than or equal to 0 "
            "(got -0.1)",
        ),
        (
            lambda p: p["decision"].update(top_share=0.0),
            "params.yaml: decision.top_share: Input should be greater than 0 (got 0.0)",
        ),
        (
            lambda p: p["decision"].update(top_share=1.5),
            "params.yaml: decision.top_share: Input should be less than or equal to 1 (got 1.5)",
        ),
        (
            lambda p: p["decision"].update(value_column="no_such_column"),
            "params.yaml: decision.value_column: 'no_such_column' is not a numeric feature in "
            "data.features",
        ),
        (
            lambda p: p["decision"].update(value_column="contract"),
            "params.yaml: decision.value_column: 'contract' is not a numeric feature in "
            "data.features",
        ),
        (
            lambda p: p["decision"].update(threshold="best"),
            "params.yaml: decision.threshold: must be a probability or max_profit (got 'best')",
        ),
        (
            lambda p: p["decision"].update(threshold=True),
            "params.yaml: decision.threshold: must be a probability or max_profit (got True)",
        ),
        (
            lambda p: p["decision"].update(threshold=1.5),
            "params.yaml: decision.threshold: Input should be less than or equal to 1, or: "
            "Input should be 'max_profit' (got 1.5)",
        ),
        (
            lambda p: p["decision"].update(threshold=-0.5),
            "params.yaml: decision.threshold: Input should be greater than or equal to 0, or: "
            "Input should be 'max_profit' (got -0.5)",
        ),
        (
            lambda p: p["decision"].update(cv_folds=1),
            "params.yaml: decision.cv_folds: Input should be greater than or equal to 2 (got 1)",
        ),
        (
            lambda p: p["decision"].update(budget=1),
            "params.yaml: decision.budget: unknown key (allowed: contact_cost, cv_folds, "
            "cv_max_rows, incentive_cost, retention_rate, threshold, top_share, value, "
            "value_column)",
        ),
        (
            lambda p: p["decision"].update(value=1e308),  # finite, but the profit would not be
            "params.yaml: decision.value: Input should be less than or equal to 1000000000000 "
            "(got 1e+308)",
        ),
        (
            lambda p: p["decision"].update(incentive_cost=1e13),
            "params.yaml: decision.incentive_cost: Input should be less than or equal to "
            "1000000000000 (got 10000000000000.0)",
        ),
        (
            lambda p: p["data"]["features"].update(churn={"type": "categorical"}),
            "params.yaml: data: features: 'churn' is the target, not a feature",
        ),
        (
            lambda p: p["data"]["features"].update(rownames={"type": "numeric"}),
            "params.yaml: data: features: 'rownames' is the id, not a feature",
        ),
        (
            lambda p: p["data"].update(id="churn"),
            "params.yaml: data: id and target are both 'churn': two columns are needed",
        ),
        (
            lambda p: p["data"]["features"]["contract"].update(categories=[]),
            "params.yaml: data.features.contract.categories: List should have at least 1 item "
            "after validation, not 0 (got []; null is allowed too)",
        ),
        (
            lambda p: p["data"]["features"]["contract"].update(
                categories=["One year", "Month-to-month", "Two year", "Month-to-month", "One year"]
            ),
            "params.yaml: data.features.contract: categories lists 'Month-to-month' twice",
        ),
        (
            lambda p: p["release"].update(metric="roc_auc", minimum=1.0),
            "params.yaml: release: minimum must be between 0 and 1 for roc_auc (got 1.0)",
        ),
        (
            lambda p: p["release"].update(metric="capture_at_k", minimum=0.0),
            "params.yaml: release: minimum must be between 0 and 1 for capture_at_k (got 0.0)",
        ),
        (
            lambda p: p["evaluate"].update(importance_repeats=10**12),
            "params.yaml: evaluate.importance_repeats: Input should be less than or equal to "
            "1000 (got 1000000000000)",
        ),
        (
            lambda p: p["train"]["random_forest"].update(n_estimators=10_001),
            "params.yaml: train.random_forest.n_estimators: Input should be less than or equal "
            "to 10000 (got 10001)",
        ),
        (
            lambda p: p["train"]["logistic_regression"].update(max_iter=10**7),
            "params.yaml: train.logistic_regression.max_iter: Input should be less than or "
            "equal to 1000000 (got 10000000)",
        ),
        (
            lambda p: p["paths"].update(test="./data/prepared/train.parquet"),
            "params.yaml: paths: test: the same file as paths.train",
        ),
        (
            lambda p: p["paths"].update(card="reports/metrics.json"),
            "params.yaml: paths: card: reports/metrics.json collides with reports/metrics.json "
            "(evaluate's, in paths.reports)",
        ),
        (
            lambda p: p["paths"].update(predictions="reports/plots/p.csv"),
            "params.yaml: paths: predictions: reports/plots/p.csv collides with reports/plots "
            "(evaluate's, in paths.reports)",
        ),
        (
            lambda p: p["paths"].update(featurizer="models/model.pkl/f.pkl"),
            "params.yaml: paths: featurizer: models/model.pkl/f.pkl collides with "
            "models/model.pkl (paths.model)",
        ),
        (
            lambda p: p["paths"].update(predictions="../predictions.csv"),
            "params.yaml: paths: predictions: ../predictions.csv is not inside the project",
        ),
        (
            lambda p: p["paths"].update(model="/srv/model.pkl"),
            "params.yaml: paths: model: /srv/model.pkl is not inside the project",
        ),
        (
            lambda p: p["paths"].update(reports="."),
            "params.yaml: paths: reports: . is not inside the project",
        ),
        (
            lambda p: p["paths"].update(card=".git/config"),
            "params.yaml: paths: card: .git/config is in a hidden folder or file (.git)",
        ),
        (
            lambda p: p["paths"].update(featurizer="models/../.dvc/cache/f.pkl"),
            "params.yaml: paths: featurizer: models/../.dvc/cache/f.pkl is in a hidden folder "
            "or file (.dvc)",
        ),
        (
            lambda p: p["paths"].update(train="./params.yaml"),
            "params.yaml: paths: train: ./params.yaml is one of the files that define the pipeline",
        ),
        (
            lambda p: p["paths"].update(card="reports/c\rard.md"),
            "params.yaml: paths: card: 'reports/c\\rard.md' has a control character",
        ),
        (
            lambda p: p["paths"].update(raw="data/raw/x\nerror: fake.csv"),
            "params.yaml: paths: raw: 'data/raw/x\\nerror: fake.csv' has a control character",
        ),
        (
            lambda p: p["source"].update(out="data/prepared/train.parquet"),
            "params.yaml: source.out: data/prepared/train.parquet collides with paths.train",
        ),
        (
            lambda p: p["source"].update(out="reports"),
            "params.yaml: source.out: reports collides with paths.reports",
        ),
        (
            lambda p: p["source"].update(out="models/model.pkl/raw.csv"),
            "params.yaml: source.out: models/model.pkl/raw.csv collides with paths.model",
        ),
        (
            lambda p: p["source"].update(out="../raw.csv"),
            "params.yaml: source.out: ../raw.csv is not inside the project",
        ),
        (
            lambda p: p["source"].update(out="dvc.lock"),
            "params.yaml: source.out: dvc.lock is one of the files that define the pipeline",
        ),
        (
            lambda p: p["train"]["random_forest"].update(min_samples_leaf=10**29),
            "params.yaml: train.random_forest.min_samples_leaf: Input should be less than or "
            "equal to 2147483647 (got 100000000000000000000000000000)",
        ),
        (
            lambda p: p["train"]["hist_gradient_boosting"].update(max_leaf_nodes=2**31),
            "params.yaml: train.hist_gradient_boosting.max_leaf_nodes: Input should be less "
            "than or equal to 2147483647 (got 2147483648)",
        ),
        (
            lambda p: p["evaluate"].update(plot_max_rows=2**31),
            "params.yaml: evaluate.plot_max_rows: Input should be less than or equal to "
            "2147483647 (got 2147483648)",
        ),
        (
            lambda p: p["paths"].update(raw="data/prepared/test.parquet"),
            "params.yaml: paths: raw: the same file as paths.test",
        ),
    ],
)
def test_bad_params_name_the_key(params_dict, edit, message):
    edit(params_dict)
    with pytest.raises(ChurnError) as err:
        parse_params(params_dict)
    assert str(err.value) == message
    assert "\n" not in str(err.value)


def test_missing_params_file_is_named(tmp_path):
    with pytest.raises(ChurnError, match=r"nope\.yaml: file not found"):
        load_params(tmp_path / "nope.yaml")


def test_a_directory_is_not_a_params_file(tmp_path):
    with pytest.raises(ChurnError) as err:
        load_params(tmp_path)
    assert str(err.value) == f"{tmp_path}: a directory, not a params file"


def test_params_file_must_be_a_mapping(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ChurnError, match="expected a mapping of sections, got list"):
        load_params(path)


def test_broken_yaml_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(ChurnError) as err:
        load_params(path)
    assert str(err.value).startswith(f"{path}: not valid YAML")
    assert "\n" not in str(err.value)


def test_params_are_read_as_yaml_1_2_like_dvc_writes_them(tmp_path, params_raw):
    # `dvc exp run -S` rewrites params.yaml and drops the quotes around "Yes".
    text = (
        (REPO / "params.yaml").read_text().replace('positive_label: "Yes"', "positive_label: Yes")
    )
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert load_params(path).data.positive_label == "Yes"


def test_paths_may_sit_beside_each_other_and_raw_anywhere(params_dict):
    """The card and predictions beside evaluate's files; an input outside the project."""
    params_dict["paths"].update(raw="/data/customers.csv", reports="models", card="models/c.md")
    paths = parse_params(params_dict).paths
    assert (paths.raw, paths.reports, paths.card) == (
        "/data/customers.csv",
        "models",
        "models/c.md",
    )


def test_the_edges_themselves_are_allowed(params_dict):
    params_dict["data"]["features"]["tenure"].update(min=3, max=3)  # min == max
    params_dict["evaluate"].update(calibration_bins=2)
    params_dict["prepare"].update(seed=2**32 - 1)
    params_dict["data"].update(labels=["Yes", "No"])  # order does not matter
    params_dict["train"]["logistic_regression"].update(C=float("inf"))  # scikit-learn: no penalty
    parsed = parse_params(params_dict)
    assert parsed.data.features["tenure"].min == parsed.data.features["tenure"].max == 3
    assert parsed.evaluate.calibration_bins == 2
    assert parsed.train.logistic_regression.C == float("inf")


def test_a_bad_value_in_the_file_names_the_file_and_the_key(tmp_path, params_dict):
    params_dict["prepare"]["test_size"] = 1.5
    path = tmp_path / "exp" / "params.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(params_dict), encoding="utf-8")
    with pytest.raises(ChurnError) as err:
        load_params(path)
    assert str(err.value) == f"{path}: prepare.test_size: Input should be less than 1 (got 1.5)"


def test_params_are_read_as_utf8_whatever_the_locale(tmp_path, params_dict):
    """Reading with the locale's encoding fails on non-ASCII paths in a non-UTF-8 locale."""
    params_dict["paths"]["card"] = "reports/modèle.md"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params_dict, allow_unicode=True), encoding="utf-8")
    with ascii_locale():
        assert load_params(path).paths.card == "reports/modèle.md"


class _Unions(BaseModel):
    """Unions whose first member is each scalar pydantic tags the error path with."""

    model_config = ConfigDict(strict=True)
    s: str | int = ""
    i: int | str = 0
    f: float | str = 0.0
    b: bool | str = False


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "max_features",
            2,
            "train.random_forest.max_features: Input should be 'sqrt' or 'log2', or: Input "
            "should be less than or equal to 1 (got 2)",
        ),
        (
            "max_features",
            "0.5",
            "train.random_forest.max_features: Input should be 'sqrt' or 'log2', or: Input "
            "should be a valid number (got '0.5')",
        ),
    ],
)
def test_a_key_of_several_forms_names_each(params_dict, key, value, message):
    """`max_features: 2` said only "'sqrt' or 'log2'", never that a fraction is allowed."""
    params_dict["train"]["random_forest"][key] = value
    with pytest.raises(ChurnError) as err:
        parse_params(params_dict)
    assert str(err.value) == f"params.yaml: {message}"


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("s", "s: Input should be a valid string, or: Input should be a valid integer (got [1])"),
        ("i", "i: Input should be a valid integer, or: Input should be a valid string (got [1])"),
        ("f", "f: Input should be a valid number, or: Input should be a valid string (got [1])"),
        ("b", "b: Input should be a valid boolean, or: Input should be a valid string (got [1])"),
    ],
)
def test_union_member_tags_are_not_part_of_the_key(field, message):
    """The key in the message is the dotted params key: `i`, not `i.int`.

    Pydantic puts the union member it tried ("int", "str"...) into the error path. Each
    member's message is given: the first alone never said what else the key takes.
    """
    with pytest.raises(ValidationError) as err:
        _Unions.model_validate({field: [1]})
    assert describe(err.value) == message


def test_unknown_key_of_a_feature_named_like_a_rule_key(params_dict):
    """A feature may be called "min" or "type": its unknown keys list FeatureRule's keys."""
    params_dict["data"]["features"]["min"] = params_dict["data"]["features"].pop("tenure")
    params_dict["data"]["features"]["min"]["bogus"] = 1
    with pytest.raises(ChurnError) as err:
        parse_params(params_dict)
    assert str(err.value) == (
        "params.yaml: data.features.min.bogus: unknown key "
        "(allowed: categories, max, min, nullable, type)"
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"threshold": 0}, 0.0),
        ({"threshold": 1}, 1.0),
        ({"threshold": 0.35}, 0.35),
        ({"threshold": "max_profit"}, "max_profit"),
    ],
)
def test_decision_threshold_is_a_probability_or_max_profit(params_dict, changes, expected):
    params_dict["decision"].update(changes)
    assert parse_params(params_dict).decision.threshold == expected


def test_decision_edges_and_defaults(params_dict):
    params_dict["decision"].update(
        top_share=1.0, retention_rate=0.0, contact_cost=0.0, value_column=None
    )
    for key in ("incentive_cost", "cv_folds"):
        params_dict["decision"].pop(key)
    decision = parse_params(params_dict).decision
    assert (decision.top_share, decision.retention_rate, decision.value_column) == (1.0, 0.0, None)
    assert (decision.incentive_cost, decision.cv_folds) == (0.0, 5)
    params_dict["decision"].pop("top_share")
    assert parse_params(params_dict).decision.top_share == 0.1


def test_the_value_column_is_checked_against_the_contract_when_features_are_inferred(params_dict):
    params_dict["data"]["features"] = "infer"
    params_dict["decision"]["value_column"] = "anything"
    assert parse_params(params_dict).decision.value_column == "anything"  # train checks it


@pytest.mark.parametrize("metric", ["profit", "lift_at_k"])
def test_release_minimum_of_an_unbounded_metric_may_exceed_one(params_dict, metric):
    params_dict["release"].update(metric=metric, minimum=2500)
    assert parse_params(params_dict).release.minimum == 2500.0
    params_dict["release"].update(metric="average_precision", minimum=0.999)
    assert parse_params(params_dict).release.minimum == 0.999
