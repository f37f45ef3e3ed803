"""The service's features, one package each, found by looking in this folder.

A feature keeps its tables in `models`, its queries and rules beside them, and,
with FastAPI, its endpoints in an `api` package whose `install(app)` adds its
routes and error handlers. Alembic and the app find every feature here, so
adding or deleting a feature's folder needs no edit anywhere else.
"""

import importlib
import importlib.util
import pkgutil
from types import ModuleType

from sqlalchemy import MetaData

from {{ cookiecutter.package_name }}.db.base import Base


def feature_modules(name: str) -> list[ModuleType]:
    """Each feature's module called `name` (e.g. "models", "api"), imported, by feature name."""
    features = sorted(module.name for module in pkgutil.iter_modules(__path__) if module.ispkg)
    qualified = [f"{__name__}.{feature}.{name}" for feature in features]
    return [
        importlib.import_module(module)
        for module in qualified
        if importlib.util.find_spec(module) is not None
    ]


def load_models() -> MetaData:
    """Import every feature's models; Base.metadata, returned, then holds every table."""
    feature_modules("models")
    return Base.metadata
