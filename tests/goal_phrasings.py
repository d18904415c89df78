"""The phrasing table for agent/goal.py: (goal, columns, what must be understood). A value of None
means the key must NOT be understood (the sentence does not say it). Add a row for every phrasing
a user tried that was misread."""

CONCRETE = ["cement", "water", "age", "strength"]
CONCRETE_LONG = ["cement", "blast_furnace_slag", "water", "age", "compressive_strength"]
CHURN = ["customer_id", "tenure", "monthly_charges", "contract", "churned"]
TELCO = ["customerID", "gender", "tenure", "Contract", "Churn"]
BANK = ["CustomerId", "Surname", "CreditScore", "Age", "Balance", "Exited"]
HOUSES = ["lot_area", "year_built", "bedrooms", "SalePrice"]
SALES = ["date", "store", "promo", "sales"]
LOANS = ["loan_id", "income", "loan_amount", "default"]
TITANIC = ["PassengerId", "Pclass", "Sex", "Age", "Fare", "Survived"]
GENERIC = ["f1", "f2", "f3", "label"]

PHRASINGS: list[tuple[str, list[str], dict]] = [
    # -- target: by name, with punctuation, case and separators tolerated
    ("Predict strength.", CONCRETE, {"target": "strength"}),
    ("predict STRENGTH", CONCRETE, {"target": "strength"}),
    ("Strength?", CONCRETE, {"target": "strength"}),
    ("what drives compressive strength?", CONCRETE_LONG, {"target": "compressive_strength"}),
    ("what drives strength?", CONCRETE_LONG, {"target": "compressive_strength"}),
    ("model compressive-strength", CONCRETE_LONG, {"target": "compressive_strength"}),
    ("Predict strength from cement, water and age.", CONCRETE, {"target": "strength"}),
    ("Using cement and water, predict strength", CONCRETE, {"target": "strength"}),
    ("estimate the sale price of each house", HOUSES, {"target": "SalePrice"}),
    ("I want to predict SalePrice", HOUSES, {"target": "SalePrice"}),
    ("predict survived", TITANIC, {"target": "Survived"}),
    # -- target: word forms and close spellings
    ("which customers will churn", CHURN, {"target": "churned"}),
    ("which customers will churn", TELCO, {"target": "Churn"}),
    ("find the churners", CHURN, {"target": "churned"}),
    ("Predict strenght.", CONCRETE, {"target": "strength"}),
    ("predict compresive strenght", CONCRETE_LONG, {"target": "compressive_strength"}),
    ("who survives?", TITANIC, {"target": "Survived"}),
    # -- target: synonyms in the sentence
    ("which customers will leave the bank", BANK, {"target": "Exited"}),
    ("who is going to cancel next quarter?", TELCO, {"target": "Churn"}),
    ("how much will a house sell for", HOUSES, {"target": "SalePrice", "task": "regression"}),
    ("which passengers died", TITANIC, {"target": "Survived"}),
    ("spot customers at risk of attrition", CHURN, {"target": "churned"}),
    # -- target: not a grouping or an input, not a stopword, ambiguous left open
    ("predict sales per store", SALES, {"target": "sales", "group_column": "store"}),
    ("predict sales by store using promo", SALES, {"target": "sales", "group_column": "store"}),
    ("build a model", ["a", "b", "c"], {"target": None}),
    ("compare age and tenure", BANK + ["tenure"], {"target": None}),
    ("help me with this data", CONCRETE, {"target": None}),
    # -- task kind
    ("predict whether a loan will default", LOANS, {"target": "default", "task": "binary"}),
    ("is this a fraud, yes or no", ["amount", "fraud"], {"target": "fraud", "task": "binary"}),
    ("a regression on strength", CONCRETE, {"target": "strength", "task": "regression"}),
    ("how many bikes will be rented per day", ["date", "temp", "count"], {"task": "regression"}),
    ("multiclass: which species is it", ["bill", "flipper", "species"], {"target": "species", "task": "multiclass"}),
    ("classify the species", ["bill", "flipper", "species"], {"target": "species", "task": None}),
    ("forecast sales by month", SALES, {"target": "sales", "time_column": "date", "task": None}),
    ("segment our customers", CHURN, {"task": None}),
    ("rank the leads by how likely they are to convert", ["lead_id", "source", "converted"], {"target": "converted"}),
    ("flag unusual transactions", ["amount", "merchant"], {"target": None}),
    # -- metric
    ("predict churn, optimise recall", TELCO, {"target": "Churn", "metric": "recall"}),
    ("maximise AUC for churn", TELCO, {"metric": "roc_auc", "target": "Churn"}),
    ("use ROC-AUC", TELCO, {"metric": "roc_auc"}),
    ("judge it by the area under the ROC curve", TELCO, {"metric": "roc_auc"}),
    ("the metric is PR-AUC", TELCO, {"metric": "pr_auc"}),
    ("optimise average precision: positives are rare", TELCO, {"metric": "pr_auc"}),
    ("we need well calibrated probabilities, so log loss", TELCO, {"metric": "log_loss"}),
    ("F1 score please", TELCO, {"metric": "f1"}),
    ("balanced accuracy, the classes are skewed", TELCO, {"metric": "balanced_accuracy"}),
    ("catch as many churners as possible", TELCO, {"metric": "recall"}),
    ("predict strength; report the mean absolute error", CONCRETE, {"metric": "mae", "target": "strength"}),
    ("minimise RMSE on strength", CONCRETE, {"metric": "rmse"}),
    ("minimize the root mean squared error", CONCRETE, {"metric": "rmse"}),
    ("R² is what the engineers know", CONCRETE, {"metric": "r2"}),
    ("keep the percentage error small", CONCRETE, {"metric": "mape"}),
    ("predict strength as well as you can", CONCRETE, {"metric": None}),
    # -- costs
    ("a false alarm costs $5, a missed churner $120", TELCO, {"cost_fp": 5.0, "cost_fn": 120.0, "target": "Churn"}),
    ("which customers will churn? a wasted call costs 5, a lost customer 120", CHURN,
     {"target": "churned", "cost_fp": 5.0, "cost_fn": 120.0}),
    ("false positives cost us 10 dollars and false negatives cost 200", TELCO, {"cost_fp": 10.0, "cost_fn": 200.0}),
    ("a missed default is 10 times worse than a false alarm", LOANS, {"cost_fp": 1.0, "cost_fn": 10.0}),
    ("false positives are three times as costly as false negatives", LOANS, {"cost_fp": 3.0, "cost_fn": 1.0}),
    ("each unnecessary inspection costs $1,500 and an undetected fraud $20k", ["amount", "fraud"],
     {"cost_fp": 1500.0, "cost_fn": 20000.0, "target": "fraud"}),
    ("a missed churner costs a lot", TELCO, {"cost_fp": None, "cost_fn": None}),
    ("a missed bad loan costs 5 times a wrongly refused good one", LOANS, {"cost_fp": 1.0, "cost_fn": 5.0}),
    ("a missed churner costs us ten times as much as a false alarm", TELCO, {"cost_fp": 1.0, "cost_fn": 10.0}),
    ("a false alarm costs 3x a missed churner", TELCO, {"cost_fp": 3.0, "cost_fn": 1.0}),
    # -- positive class
    ("the positive class is yes", TELCO, {"positive_class": "yes"}),
    ("treat 'churned' as positive", TELCO, {"positive_class": "churned"}),
    ("bad is the positive label", ["x", "risk"], {"positive_class": "bad"}),
    # -- budget
    ("Predict strength. Use your judgement on anything you need to ask, and keep it to 60 seconds.", CONCRETE,
     {"target": "strength", "time_budget": 60.0}),
    ("keep it to a minute", CONCRETE, {"time_budget": 60.0}),
    ("you have 5 minutes", CONCRETE, {"time_budget": 300.0}),
    ("spend at most two minutes on it", CONCRETE, {"time_budget": 120.0}),
    ("predict strength within 90s", CONCRETE, {"time_budget": 90.0, "target": "strength"}),
    ("predict strength; 2 min", CONCRETE, {"time_budget": 120.0}),
    ("take half a minute", CONCRETE, {"time_budget": 30.0}),
    ("budget of 1.5 minutes", CONCRETE, {"time_budget": 90.0}),
    ("predict flight delays over 5 minutes", ["carrier", "delayed"], {"time_budget": None}),
    # -- interpretability
    ("must be explainable to the regulator", LOANS, {"interpretability": "high"}),
    ("the bank needs an interpretable model", LOANS, {"interpretability": "high"}),
    ("we must explain each decision to the customer", LOANS, {"interpretability": "high"}),
    ("accuracy is all that matters, a black box is fine", LOANS, {"interpretability": "low", "metric": "accuracy"}),
    ("some interpretability would help", LOANS, {"interpretability": "medium"}),
    ("predict default", LOANS, {"interpretability": None}),
    # -- model_families: a restriction said with "only" / "just", in the sentence's order
    ("Predict default with XGBoost only", LOANS, {"target": "default", "model_families": ["xgboost"]}),
    ("just use linear or random forest models to predict default", LOANS, {"model_families": ["linear", "random_forest"]}),
    ("only use a logistic regression to predict default", LOANS,
     {"model_families": ["linear"], "task": None, "target": "default"}),  # logistic regression is no regression task
    ("only try gradient boosting and neural networks", LOANS,
     {"model_families": ["hist_gb", "xgboost", "lightgbm", "catboost", "mlp"]}),
    ("only hist gradient boosting", LOANS, {"model_families": ["hist_gb"]}),
    ("we use xgboost today: beat it", LOANS, {"model_families": None}),  # names a model, restricts nothing
    ("predict default", LOANS, {"model_families": None}),
    # -- time and group columns
    ("sales by month per store", SALES, {"time_column": "date", "group_column": "store", "target": "sales"}),
    ("predict sales for each store over time", SALES, {"time_column": "date", "group_column": "store"}),
    ("weekly sales", SALES, {"time_column": "date"}),
    ("predict sales", SALES, {"time_column": None, "group_column": None}),
    ("by month", CONCRETE, {"time_column": None}),
]

# Goals that say "use your judgement" about the questions (the chat answers them with defaults).
JUDGEMENT = [
    ("Use your judgement on anything you need to ask.", True),
    ("your call", True),
    ("don't ask me anything, just build it", True),
    ("predict strength", False),
]
