"""Artifact names inside sessions/<id>/artifacts/: one place, shared by tools and the agent."""

PROFILE = "profile.json"
TASK = "task.json"
UNSUPERVISED = "unsupervised.json"  # the fitted clustering / anomaly task (tools/unsupervised): no task.json then  # target, task type, metric, split description and test row indices
LEADERBOARD = "leaderboard.json"
OOF = "oof.npz"  # out-of-fold predictions of the candidates (training part only)
STACKING = "stacking.json"  # whether build_ensemble's level-2 stack was tried, its CV, and why kept or not
TUNING = "tuning.json"
STUDY_DB = "optuna.db"
STUDY_JOURNAL = "optuna.journal"  # the study with --cluster (workers append to one journal file)
MODEL = "model/model.skops"
MODEL_MANIFEST = "model/manifest.json"
# The model the test split scored, kept only when the shipped one was then refitted on every labelled row
# (tools/refit_all.py): the explanation measures importance on test rows with it.
SCORED_MODEL = "scored_model/model.skops"
EVALUATION = "evaluation.json"
EXPLANATION = "explanation.json"
REPORT = "report.md"
MODEL_CARD = "model_card.md"
NOTEBOOK = "notebook.ipynb"
MONITORING = "monitoring.json"
MONITORING_MD = "monitoring.md"
PLOTS_DIR = "plots"
RECORDS_DIR = "records"
TRAFFIC = "traffic"  # the traffic log of `dsagent serve` (Parquet parts; tools/traffic.py)
