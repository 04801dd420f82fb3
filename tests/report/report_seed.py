"""A seeded fraud-like workspace with two weeks of production (ISO 2026-W45 and W46, in
Europe/Berlin), ingested through the real pipeline, and its App.

W46 drifts: amounts grow, online traffic doubles, and online fraud becomes more common
than the scores say (concept drift). Labels of every W45 row arrived; in W46 labels
arrived for rows older than a day before ``AS_OF`` (some of them not matured yet).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from driftd.app import App

AS_OF = datetime(2026, 11, 16, 7, 30, tzinfo=UTC)  # Monday 08:30 in Berlin
W45 = datetime(2026, 11, 1, 23, 0, tzinfo=UTC)  # Monday 2 November 00:00 in Berlin
CHANNELS = np.array(["store", "online", "phone"], dtype=object)
COSTS = {"tp": 2.0, "fp": 5.0, "fn": 20.0, "tn": 0.0}  # plus the amount of a missed fraud
CAPACITY = 40.0


def _draw(rng: np.random.Generator, n: int, *, drifted: bool) -> pd.DataFrame:
    online = 0.5 if drifted else 0.25
    channel = rng.choice(CHANNELS, size=n, p=[0.75 - online, online, 0.25])
    amount = np.round(np.exp(rng.normal(3.5, 0.8, size=n)) * (1.5 if drifted else 1.0), 2)
    new_device = rng.random(n) < 0.1
    logit = -3.2 + 1.2 * (np.log(amount) - 3.5) + 2.0 * new_device + 1.0 * (channel == "online")
    score = 1 / (1 + np.exp(-logit))
    truth = score + (0.08 * (channel == "online") if drifted else 0.0)
    target = (rng.random(n) < np.clip(truth, 0, 1)).astype(int)
    return pd.DataFrame(
        {
            "amount": amount,
            "channel": channel,
            "new_device": new_device,
            "score": score,
            "prediction": (score >= 0.2).astype(int),
            "is_fraud": target,
        }
    )


@dataclass
class Seeded:
    app: App
    config: Path
    workspace: Path
    messages: list[str]
    now: list[datetime]  # now[0] is the app's clock


def write_workspace(root: Path, db_url: str) -> Path:
    rng = np.random.default_rng(7)
    reference = _draw(rng, 4000, drifted=False)
    reference.to_csv(root / "reference.csv", index=False)
    (root / "logs").mkdir()
    predictions, labels = [], []
    for week, drifted in ((0, False), (1, True)):
        rows = _draw(rng, 1400, drifted=drifted)
        offsets = np.sort(rng.integers(0, 7 * 24 * 3600, size=len(rows)))
        for i, (offset, row) in enumerate(zip(offsets, rows.itertuples(), strict=True)):
            ts = W45 + timedelta(weeks=week, seconds=int(offset))
            rid = f"w{week}-{i}"
            predictions.append(
                {
                    "id": rid,
                    "ts": ts.isoformat().replace("+00:00", "Z"),
                    "model_version": "1",
                    "variant": "champion",
                    "features": {
                        "amount": row.amount,
                        "channel": row.channel,
                        "new_device": bool(row.new_device),
                    },
                    "prediction": int(row.prediction),
                    "score": float(row.score),
                }
            )
            if ts < AS_OF - timedelta(days=1):
                labels.append({"id": rid, "label": int(row.is_fraud), "ts": AS_OF.isoformat()})
    for name, records in (("predictions", predictions), ("labels", labels)):
        with (root / "logs" / f"{name}.jsonl").open("w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in records)
    config = {
        "model": {"name": "fraud", "threshold": 0.2},
        "reference": {
            "path": "reference.csv",
            "target": "is_fraud",
            "score_column": "score",
            "prediction_column": "prediction",
        },
        "schema": {"amount": "numeric", "channel": "categorical", "new_device": "boolean"},
        "sources": {
            "predictions": [{"paths": ["logs/predictions.jsonl"]}],
            "labels": [{"paths": ["logs/labels.jsonl"]}],
        },
        "storage": {"url": db_url},
        "windows": {"size": "1d"},
        "performance": {"label_delay": "2d", "cost": {"fn": 1, "fp": 1, "currency": "EUR"}},
        "business": {
            "unit": "payment",
            "positive": "fraud",
            "negative": "good payments",
            "cost": {"tp": COSTS["tp"], "fp": COSTS["fp"], "fn": COSTS["fn"]},
            "value_column": "amount",
            "review_capacity": CAPACITY,
            "timezone": "Europe/Berlin",
        },
    }
    path = root / "driftd.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
