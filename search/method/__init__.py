"""The thesis' method, with no storage and no CLI. Its parts (the range test's curve, bound
rules and result, the gate, optimizers, schedules, batch selection, training, and every
registry the config validates against) read no config; the trial built from them (suggest
-> TrialConfig -> recipe, prepared data, the range test run) does."""
