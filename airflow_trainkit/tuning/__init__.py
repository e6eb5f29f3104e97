"""Hyperparameter search whose trials are training jobs of any backend (the core, outside Airflow).

``space`` reads the search space, ``settings`` the search's own inputs, ``records`` what is kept
across tries, ``study`` the Optuna side, ``money`` the budget, ``search`` the loop that ties them,
``report`` what people look at afterwards. Optuna is imported only when a search runs.
"""
