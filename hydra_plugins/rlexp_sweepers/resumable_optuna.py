"""``ResumableOptunaSweeper``: hydra-optuna-sweeper's sweeper, resuming a study instead of
starting it over (``hydra/sweeper: rlexp_optuna``; the ``[optuna]`` extra).

The plugin's own sweeper, run again on an existing study, runs ``n_trials`` more trials and
numbers its jobs from 0 again, into the existing job directories. This one reads the study
first: the finished trials already stored count toward ``n_trials``, new jobs are numbered
after every earlier trial (an interrupted one keeps its directory), and the sweep directory,
where the presets keep the SQLite storage, exists before the study opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

from hydra.core.config_store import ConfigStore

try:
    from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:  # the [optuna] extra is not installed: no sweeper here (rlexp names the extra)
    OptunaSweeper = None

if OptunaSweeper is not None:

    class ResumableOptunaSweeper(OptunaSweeper):
        """hydra-optuna-sweeper's ``OptunaSweeper``, resuming its study (see the module docstring)."""

        def sweep(self, arguments: List[str]) -> None:
            import optuna

            impl = self.sweeper
            Path(str(impl.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
            if impl.storage:
                try:
                    study = optuna.load_study(study_name=impl.study_name, storage=impl.storage)
                except KeyError:  # a new study
                    study = None
                if study is not None:
                    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL,
                            optuna.trial.TrialState.PRUNED)
                    impl.n_trials = max(0, impl.n_trials - sum(1 for t in study.trials if t.state in done))
                    impl.job_idx = len(study.trials)
            return impl.sweep(arguments)

    ConfigStore.instance().store(
        group="hydra/sweeper", name="rlexp_optuna", provider="rlexp",
        node=OptunaSweeperConf(_target_=f"{__name__}.ResumableOptunaSweeper"),
    )
