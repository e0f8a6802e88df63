"""Seeded synthetic multi-task datasets whose ground truth is known.

- ``mmoe_synthetic``: two regression tasks with a controlled correlation, the synthetic data
  of the MMoE paper (Ma et al., "Modeling Task Relationships in Multi-task Learning with
  Multi-gate Mixture-of-Experts", KDD 2018, section 4.2).
- ``click_conversion``: impressions -> clicks -> conversions with the sample selection bias
  of e-commerce funnels (conversions only ever follow clicks), the setting of ESMM (Ma et
  al., SIGIR 2018) and AITM (Xi et al., KDD 2021).

Both return a ``MultiTaskData`` whose ``oracle`` holds each label's expectation under the
generating model, so a trained model can be compared against the best achievable score.
"""

import numpy as np

from tf_mtl.data.dataset import MultiTaskData
from tf_mtl.features.spec import DenseFeature, SequenceFeature, SparseFeature


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")


def _check_fraction(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number in (0, 1). Received: {name}={value!r}")


def mmoe_task_weights(input_dim, correlation, scale=1.0, seed=0):
    """The two task weight vectors of ``mmoe_synthetic(..., seed=seed)``.

    ``u1, u2`` are the first two columns of a random orthogonal matrix, ``w1 = c * u1`` and
    ``w2 = c * (rho * u1 + sqrt(1 - rho**2) * u2)``, so ``cos(w1, w2) = rho`` and, for
    ``x ~ N(0, I)``, the Pearson correlation of ``w1 @ x`` and ``w2 @ x`` is ``rho``.

    Args:
        input_dim: ``d``, the input dimension (at least 2).
        correlation: ``rho`` in [-1, 1].
        scale: ``c``, the norm of both weight vectors.
        seed: the seed of ``mmoe_synthetic``.

    Returns:
        ``(w1, w2)``, two float64 arrays of shape ``(input_dim,)``.
    """
    _check_int("input_dim", input_dim, 2)
    if isinstance(correlation, bool) or not isinstance(correlation, (int, float)) or not -1 <= correlation <= 1:
        raise ValueError(f"correlation must be a number in [-1, 1]. Received: correlation={correlation!r}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale <= 0:
        raise ValueError(f"scale must be a positive number. Received: scale={scale!r}")
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[0])
    basis, _ = np.linalg.qr(rng.standard_normal((input_dim, 2)))
    u1, u2 = basis[:, 0], basis[:, 1]
    return scale * u1, scale * (correlation * u1 + np.sqrt(1 - correlation**2) * u2)


def mmoe_synthetic(n_samples, correlation, input_dim=100, n_sin=10, scale=1.0, seed=0):
    """Two regression tasks whose correlation is set by ``correlation`` (MMoE, section 4.2).

    Follows Ma et al. (KDD 2018), "Synthetic Data Generation": with ``w1, w2`` from
    ``mmoe_task_weights``, ``x ~ N(0, I_d)`` and

        y_i = w_i^T x + sum_{k=1..m} sin(alpha_k w_i^T x + beta_k) + eps_i,

    where ``alpha_k, beta_k ~ N(0, 1)`` are drawn once and shared by both tasks, and
    ``eps_i ~ N(0, 0.01)`` (variance 0.01). The sine terms make the tasks non-linear, so the
    label correlation is below ``correlation`` except at 1.

    Args:
        n_samples: number of rows.
        correlation: ``rho`` in [-1, 1], the cosine of the two task weight vectors.
        input_dim: ``d`` (default 100, as in the paper).
        n_sin: ``m``, the number of sine terms (default 10).
        scale: ``c``, the norm of the weight vectors (default 1).
        seed: seeds the weights, the sine parameters and the samples (independent streams).

    Returns:
        ``MultiTaskData`` with one ``DenseFeature("x", embed_dim=input_dim)`` (float32
        ``(n_samples, input_dim)``) and regression tasks ``"task1"``, ``"task2"``; ``oracle``
        holds the noise-free labels.

    Example:

    >>> data = mmoe_synthetic(10_000, correlation=0.5)
    >>> data.x["x"].shape, data.y["task1"].shape
    ((10000, 100), (10000,))
    """
    _check_int("n_samples", n_samples, 1)
    _check_int("n_sin", n_sin, 0)
    weights = mmoe_task_weights(input_dim, correlation, scale, seed)
    _, sine_stream, sample_stream = np.random.SeedSequence(seed).spawn(3)
    sine_rng, sample_rng = np.random.default_rng(sine_stream), np.random.default_rng(sample_stream)
    alpha, beta = sine_rng.standard_normal(n_sin), sine_rng.standard_normal(n_sin)
    x = sample_rng.standard_normal((n_samples, input_dim))
    y, oracle = {}, {}
    for name, w in zip(("task1", "task2"), weights):
        linear = x @ w
        mean = linear + np.sin(linear[:, None] * alpha + beta).sum(axis=1)
        oracle[name] = mean.astype(np.float32)
        y[name] = (mean + sample_rng.normal(0.0, 0.1, n_samples)).astype(np.float32)
    return MultiTaskData(
        features=(DenseFeature("x", embed_dim=input_dim),),
        task_types=("regression", "regression"),
        task_names=("task1", "task2"),
        x={"x": x.astype(np.float32)},
        y=y,
        oracle=oracle,
    )


N_USERS, N_ITEMS, N_CITIES, N_CATEGORIES = 1000, 500, 30, 20
CATEGORIES = tuple(f"cat_{i:02d}" for i in range(N_CATEGORIES))
# The generating distributions of the dense features; their exact moments go into the spec.
_PRICE_MU, _PRICE_SIGMA = 3.0, 0.6
_AGE_LOW, _AGE_HIGH = 18.0, 70.0
_CTR_A, _CTR_B = 2.0, 18.0
_MAX_POSITION = 20


def _dense_spec():
    price_mean = np.exp(_PRICE_MU + _PRICE_SIGMA**2 / 2)
    price_std = price_mean * np.sqrt(np.expm1(_PRICE_SIGMA**2))
    ctr_sum = _CTR_A + _CTR_B
    return (
        DenseFeature("item_price", mean=float(price_mean), std=float(price_std)),
        DenseFeature("user_age", mean=(_AGE_LOW + _AGE_HIGH) / 2, std=(_AGE_HIGH - _AGE_LOW) / np.sqrt(12)),
        DenseFeature(
            "item_ctr_7d",
            mean=_CTR_A / ctr_sum,
            std=float(np.sqrt(_CTR_A * _CTR_B / (ctr_sum**2 * (ctr_sum + 1)))),
        ),
        DenseFeature("position", mean=(_MAX_POSITION + 1) / 2, std=float(np.sqrt((_MAX_POSITION**2 - 1) / 12))),
    )


def _calibrate(logits, target, mask=None):
    """The intercept b with mean(sigmoid(logits + b)) == target (over ``mask``), by bisection."""
    logits = logits if mask is None else logits[mask]
    low, high = -20.0, 20.0
    for _ in range(50):
        middle = (low + high) / 2
        if np.mean(1 / (1 + np.exp(-(logits + middle)))) < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def click_conversion(n_samples, seed=0, click_rate=0.1, conversion_rate=0.2, max_len=10, embed_dim=8):
    """Impressions with a click label and a conversion label observed only after a click.

    A hidden model draws, per impression, ``click ~ Bernoulli(sigmoid(logit_c))`` and, where
    ``click == 1``, ``conversion ~ Bernoulli(sigmoid(logit_v))`` (``conversion = 0`` without a
    click): the sample selection bias of ESMM (Ma et al., SIGIR 2018). Both logits depend
    only on the visible features:

    - a user-item affinity: dot products of random 4-dim user and item embeddings (one pair
      for clicks, a partly shared pair for conversions);
    - whether the item's category is in the user's recent clicked categories;
    - a per-city bias; the item's past CTR (``item_ctr_7d``) and the slot ``position`` for
      clicks; the price (lower converts better) and the user's age for conversions.

    Intercepts are set so that about ``click_rate`` of impressions are clicked and about
    ``conversion_rate`` of clicks convert.

    Features (``embed_dim`` for every table):

    - ``user_id`` (1000 ids), ``item_id`` (500), ``user_city`` (30): int64 ``SparseFeature``s;
    - ``item_category``: a string ``SparseFeature`` with vocabulary ``cat_00 .. cat_19``, a
      function of the item;
    - ``clicked_categories``: a string ``SequenceFeature`` (mean pooling, ``max_len``), the
      distinct categories the user clicked recently, drawn from the user's taste, padded with
      ``""``; it shares the ``"category"`` table with ``item_category``;
    - ``item_price``, ``user_age``, ``item_ctr_7d``, ``position``: ``DenseFeature``s whose
      mean/std are those of their generating distributions.

    Args:
        n_samples: number of impressions.
        seed: seeds everything, including the hidden model.
        click_rate: target fraction of clicked impressions, in (0, 1).
        conversion_rate: target fraction of clicks that convert, in (0, 1).
        max_len: length of the padded ``clicked_categories``.
        embed_dim: the embedding width written into the spec.

    Returns:
        ``MultiTaskData`` with classification tasks ``"ctr"`` (click) and ``"cvr"``
        (click and conversion, 0 without a click); ``oracle`` holds ``P(click)`` and
        ``P(click and conversion)`` given the features.

    Example:

    >>> data = click_conversion(100_000)
    >>> round(float(data.y["ctr"].mean()), 2)
    0.1
    """
    _check_int("n_samples", n_samples, 1)
    _check_int("max_len", max_len, 1)
    _check_int("embed_dim", embed_dim, 1)
    _check_fraction("click_rate", click_rate)
    _check_fraction("conversion_rate", conversion_rate)
    world_rng, sample_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))

    # The world: users, items and the hidden model's parameters.
    user_city = world_rng.integers(0, N_CITIES, N_USERS)
    user_age = world_rng.uniform(_AGE_LOW, _AGE_HIGH, N_USERS)
    user_taste = world_rng.dirichlet(np.full(N_CATEGORIES, 0.3), N_USERS)
    item_category = world_rng.integers(0, N_CATEGORIES, N_ITEMS)
    item_price = world_rng.lognormal(_PRICE_MU, _PRICE_SIGMA, N_ITEMS)
    item_ctr = world_rng.beta(_CTR_A, _CTR_B, N_ITEMS)
    user_click, item_click = world_rng.normal(0, 0.9, (N_USERS, 4)), world_rng.normal(0, 0.9, (N_ITEMS, 4))
    # Conversion affinity shares half of its variance with click affinity.
    user_buy = (user_click + world_rng.normal(0, 0.9, (N_USERS, 4))) / np.sqrt(2)
    item_buy = (item_click + world_rng.normal(0, 0.9, (N_ITEMS, 4))) / np.sqrt(2)
    city_click, city_buy = world_rng.normal(0, 0.3, N_CITIES), world_rng.normal(0, 0.3, N_CITIES)

    # The impressions.
    users = sample_rng.integers(0, N_USERS, n_samples)
    items = sample_rng.integers(0, N_ITEMS, n_samples)
    position = sample_rng.integers(1, _MAX_POSITION + 1, n_samples).astype(np.float64)
    # Gumbel top-k samples distinct categories from each user's taste, most likely first.
    keys = np.log(user_taste[users] + 1e-12) + sample_rng.gumbel(size=(n_samples, N_CATEGORIES))
    history = np.argsort(-keys, axis=1)[:, :max_len]
    history_len = sample_rng.integers(0, max_len + 1, n_samples)
    in_history = np.arange(history.shape[1]) < history_len[:, None]
    category = item_category[items]
    match = ((history == category[:, None]) & in_history).any(axis=1)

    logit_click = (
        np.einsum("nd,nd->n", user_click[users], item_click[items])
        + 1.5 * match
        + city_click[user_city[users]]
        + 1.0 * np.log(item_ctr[items] / (1 - item_ctr[items]))
        - 0.06 * position
    )
    logit_buy = (
        np.einsum("nd,nd->n", user_buy[users], item_buy[items])
        + 0.8 * match
        + city_buy[user_city[users]]
        - 1.2 * (np.log(item_price[items]) - _PRICE_MU) / _PRICE_SIGMA
        + 0.02 * (user_age[users] - _AGE_LOW)
    )
    logit_click += _calibrate(logit_click, click_rate)
    p_click = 1 / (1 + np.exp(-logit_click))
    click = sample_rng.random(n_samples) < p_click
    logit_buy += _calibrate(logit_buy, conversion_rate, mask=click)
    p_buy = 1 / (1 + np.exp(-logit_buy))
    conversion = click & (sample_rng.random(n_samples) < p_buy)

    names = np.array(CATEGORIES, dtype=object)
    clicked_categories = np.where(in_history, names[history], "").astype(object)
    features = (
        SparseFeature("user_id", N_USERS, embed_dim),
        SparseFeature("item_id", N_ITEMS, embed_dim),
        SparseFeature("item_category", None, embed_dim, vocabulary=CATEGORIES, shared_embed_name="category"),
        SparseFeature("user_city", N_CITIES, embed_dim),
        SequenceFeature(
            "clicked_categories", None, embed_dim, "mean", max_len, vocabulary=CATEGORIES,
            shared_embed_name="category",
        ),
    ) + _dense_spec()
    x = {
        "user_id": users.astype(np.int64),
        "item_id": items.astype(np.int64),
        "item_category": names[category],
        "user_city": user_city[users].astype(np.int64),
        "clicked_categories": clicked_categories,
        "item_price": item_price[items].astype(np.float32),
        "user_age": user_age[users].astype(np.float32),
        "item_ctr_7d": item_ctr[items].astype(np.float32),
        "position": position.astype(np.float32),
    }
    return MultiTaskData(
        features=features,
        task_types=("classification", "classification"),
        task_names=("ctr", "cvr"),
        x=x,
        y={"ctr": click.astype(np.float32), "cvr": conversion.astype(np.float32)},
        oracle={"ctr": p_click.astype(np.float32), "cvr": (p_click * p_buy).astype(np.float32)},
    )
