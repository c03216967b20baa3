"""The course itself, beside the library: running the notebooks headless and what each leaves
behind (``runner``), the models the notebooks share, trained once and loaded after
(``recipes``), outcome sentences worded from a run's values (``wording``), notebook 08's experiment
on the Kaggle photos (``kaggle_experiment``), and notebook 09's capstone: a folder of
photos checked and split (``capstone``), judged and written up (``audit``).

    from fishcam_utils.course import Report, course_model
"""

from ..lazy import lazy_names

# Where each name lives. The runner needs no torch (``fishcam course`` starts kernels, and a kernel's
# first cell imports Report), so the torch-using modules load on first use.
_HOMES = {
    "runner": ["CellProgress", "NotebookRun", "Report", "check_course_runnable", "course_notebooks", "execute_notebook",
               "format_summary", "read_report", "run_course", "time_table"],
    "recipes": ["RECIPES", "Recipe", "course_model", "course_run_dir", "recipe_augment"],
    "kaggle_experiment": ["kaggle_pointing"],
    "wording": ["ranking", "versus"],
    "capstone": ["capstone_datasets", "capstone_folder", "check_folder", "ensure_standin"],
}
__all__, __getattr__, __dir__ = lazy_names(__name__, _HOMES)
