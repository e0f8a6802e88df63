"""ESMM, the Entire Space Multi-task Model (Ma et al., SIGIR 2018)."""

from tf_mtl.compat import keras, register
from tf_mtl.features.spec import FieldError
from tf_mtl.layers import MLP, check_mlp_params
from tf_mtl.models.base import MultiTaskModel, check_tower_params, embed_features, make_tasks, task_towers

CTCVR = "ctcvr"


@register
class ESMM(MultiTaskModel):
    """pCTR and pCVR towers on shared embeddings; pCTCVR = pCTR * pCVR, trained over all impressions.

    The loss is log loss of pCTR against the click label plus log loss of pCTCVR against
    click AND conversion, both over every impression; pCVR gets no direct loss, which is
    what removes the sample selection bias of training CVR on clicked rows. Labels are the
    raw click and conversion columns (keyed by the two task names); the CTCVR label is
    derived. Metrics score CVR on clicked rows only.

    Outputs: the two task names (pCTR, pCVR) and ``"ctcvr"``.

    Args:
        features: the feature spec.
        task_types: ``["classification", "classification"]`` (click, then conversion).
        bottom_params: ``None`` for the paper's model (the two towers share the embeddings
            only), or an MLP dict adding hidden layers both towers share.
        tower_params_list: the CTR and the CVR tower, e.g. ``[{"dims": [64]}, {"dims": [64]}]``.
        task_names: default ``["ctr", "cvr"]``.
    """

    def __init__(self, features, task_types, bottom_params, tower_params_list, task_names=None, **kwargs):
        if not isinstance(task_types, (list, tuple)) or len(task_types) != 2:
            raise FieldError("task_types", f"ESMM models two tasks, click then conversion. Received: {task_types!r}", "ESMM")
        tasks = make_tasks(task_types, task_names or ["ctr", "cvr"])
        for i, task in enumerate(tasks):
            if task.task_type != "classification":
                raise FieldError(f"task_types[{i}]", f"expected 'classification'. Received: {task.task_type!r}", "ESMM")
            if task.name == CTCVR:
                raise FieldError(f"task_names[{i}]", f"{CTCVR!r} names the derived output; choose another name.", "ESMM")
        bottom_params = None if bottom_params is None else check_mlp_params(bottom_params, "bottom_params", owner="ESMM")
        towers = check_tower_params(tower_params_list, tasks, "ESMM")
        # === Layers ===
        bottom = None if bottom_params is None else MLP(name="bottom", **bottom_params)
        # === Functional model ===
        inputs, embedding, x = embed_features(features)
        shared = x if bottom is None else bottom(x)
        outputs = task_towers([shared, shared], tasks, towers)
        ctr, cvr = (t.name for t in tasks)
        outputs[CTCVR] = keras.layers.Multiply(dtype="float32", name=CTCVR)([outputs[ctr], outputs[cvr]])
        # === Config ===
        config = {"bottom_params": bottom_params, "tower_params_list": towers}
        shared_layers = [embedding] + ([] if bottom is None else [bottom])
        super().__init__(inputs, outputs, features, tasks, config, shared_layers=shared_layers, **kwargs)

    def loss_terms(self, labels):
        ctr, cvr = self.task_names
        click = labels[ctr]
        return {ctr: ("classification", click, None), CTCVR: ("classification", click * labels[cvr], None)}

    def metric_terms(self, labels):
        ctr, cvr = self.task_names
        click = labels[ctr]
        return {
            ctr: ("classification", click, None),
            cvr: ("classification", labels[cvr], click),
            CTCVR: ("classification", click * labels[cvr], None),
        }
