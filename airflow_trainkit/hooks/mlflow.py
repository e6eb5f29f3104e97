"""Connection to an MLflow 3 tracking server and model registry: one ``MlflowClient`` per hook.

Credentials go from the connection's secret fields straight into that client; nothing is written
to ``os.environ`` and nothing secret is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from typing_extensions import override

from airflow_trainkit._compat import BaseHook, mask_secret

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "trainkit_mlflow_default"
DEFAULT_EXPERIMENT = "airflow-trainkit"


@dataclass(frozen=True)
class MlflowSettings:
    """Resolved settings of one MLflow connection. ``repr`` never shows the secrets.

    :param tracking_uri: ``http(s)://host:port`` of a tracking server, or ``sqlite:///...`` embedded.
    :param registry_uri: the model registry, when it is not the tracking server itself.
    :param artifact_location: where new experiments keep artifacts; set for the embedded store only.
    :param username: basic-auth user; with ``password``.
    :param password: basic-auth password.
    :param token: bearer token (the connection's password with an empty login).
    :param experiment: experiment that registration runs go to.
    """

    tracking_uri: str
    registry_uri: str | None = None
    artifact_location: str | None = None
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    experiment: str = DEFAULT_EXPERIMENT

    @property
    def is_remote(self) -> bool:
        """A tracking server over HTTP(S), rather than an embedded store (``sqlite:``, files)."""
        return urlsplit(self.tracking_uri).scheme in ("http", "https")

    @property
    def auth(self) -> str:
        """``"basic"``, ``"token"`` or ``"none"``: safe to log."""
        if self.token:
            return "token"
        return "basic" if self.username else "none"


def embedded_settings(experiment: str = DEFAULT_EXPERIMENT) -> MlflowSettings:
    """A sqlite registry and a local artifact folder under ``trainkit_home()/mlflow``.

    MLflow 3 refuses a plain ``./mlruns`` file store for the model registry, hence sqlite.
    """
    from airflow_trainkit.home import trainkit_home

    root = trainkit_home() / "mlflow"
    root.mkdir(parents=True, exist_ok=True)
    (root / "artifacts").mkdir(exist_ok=True)
    return MlflowSettings(
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        artifact_location=(root / "artifacts").resolve().as_uri(),
        experiment=experiment,
    )


class MlflowHook(BaseHook):
    """MLflow tracking server and registry (connection type ``trainkit_mlflow``).

    Host holds the tracking URI (``http://mlflow.internal`` or ``mlflow.internal`` with the scheme
    in Schema, default ``http``) and Port its port. Extras: ``registry_uri`` (when the registry is
    elsewhere), ``experiment`` (default ``airflow-trainkit``), ``artifact_location``. Auth: a bearer
    token in Password with Login empty, or basic auth with Login and Password.

    Without ``conn_id`` the hook uses ``trainkit_mlflow_default`` if it exists, else an embedded
    sqlite registry with artifacts under ``trainkit_home()/mlflow``.

    :param conn_id: the connection; ``None`` for the default described above.
    """

    conn_name_attr = "conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "trainkit_mlflow"
    hook_name = "Trainkit MLflow"

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id
        self._settings: MlflowSettings | None = None
        self._client: MlflowClient | None = None

    @classmethod
    @override
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": [],
            "relabeling": {"host": "Tracking URI", "schema": "Scheme", "password": "Password or token"},
            "placeholders": {
                "host": "https://mlflow.example.com",
                "login": "leave empty for token auth",
                "extra": '{"registry_uri": "", "experiment": "airflow-trainkit"}',
            },
        }

    # -- settings ----------------------------------------------------------------------------------

    def settings(self) -> MlflowSettings:
        """The connection resolved into :class:`MlflowSettings` (cached on the hook)."""
        if self._settings is None:
            self._settings = self._resolve()
        return self._settings

    def _resolve(self) -> MlflowSettings:
        conn = None
        if self.conn_id:
            conn = self.get_connection(self.conn_id)
        else:
            try:
                conn = self.get_connection(DEFAULT_CONN_ID)
            except Exception:  # no default connection: the embedded registry
                conn = None
        if conn is None:
            settings = embedded_settings()
            log.info("MLflow: no connection, using the embedded registry %s", settings.tracking_uri)
            return settings
        name = conn.conn_id
        extra = conn.extra_dejson or {}
        host = (conn.host or "").strip()
        if not host:
            raise ValueError(f"connection {name!r}: host (the MLflow tracking URI) is empty")
        if "@" in host.split("/")[2 if "://" in host else 0]:
            # Never echo the host here: it holds a secret.
            raise ValueError(
                f"connection {name!r}: host must not carry credentials; put them in login/password"
            )
        if "://" in host:
            tracking_uri = host.rstrip("/")
            if conn.port and urlsplit(tracking_uri).port is None:
                parts = urlsplit(tracking_uri)
                tracking_uri = f"{parts.scheme}://{parts.netloc}:{conn.port}{parts.path}"
        else:
            scheme = conn.schema or "http"
            tracking_uri = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
        login, password = conn.login or None, conn.password or None
        if password:
            mask_secret(password)
        if login and not password:
            raise ValueError(f"connection {name!r}: login is set but password is empty")
        experiment = extra.get("experiment") or DEFAULT_EXPERIMENT
        settings = MlflowSettings(
            tracking_uri=tracking_uri,
            registry_uri=extra.get("registry_uri") or None,
            artifact_location=extra.get("artifact_location") or None,
            username=login if password else None,
            password=password if login else None,
            token=password if not login else None,
            experiment=str(experiment),
        )
        log.info("MLflow: %s (auth: %s) from connection %s", tracking_uri, settings.auth, name)
        return settings

    # -- the client --------------------------------------------------------------------------------

    def get_client(self) -> MlflowClient:
        """The hook's one ``MlflowClient``; built on first use."""
        if self._client is None:
            settings = self.settings()
            if settings.is_remote:
                self.check_reachable()
            self._client = build_client(settings)
        return self._client

    def check_reachable(self, timeout: float = 10.0) -> None:
        """Fail fast, with the URI in the message, when the tracking server does not answer.

        MLflow itself retries a dead server for minutes before it gives up.
        """
        import requests  # comes with mlflow; only needed for a remote server

        from airflow_trainkit.exceptions import TrainkitError

        uri = self.settings().tracking_uri
        try:
            response = requests.get(f"{uri}/health", timeout=timeout)
        except requests.RequestException as err:
            raise TrainkitError(
                f"MLflow tracking server {uri} is unreachable ({type(err).__name__}); "
                f"check connection {self.conn_id or DEFAULT_CONN_ID!r}"
            ) from None
        if response.status_code >= 500:
            raise TrainkitError(f"MLflow tracking server {uri} answered /health with {response.status_code}")

    def experiment_id(self, name: str | None = None) -> str:
        """Id of the experiment ``name`` (the connection's by default), created if missing."""
        settings = self.settings()
        client = self.get_client()
        name = name or settings.experiment
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(client.create_experiment(name, artifact_location=settings.artifact_location))
        except Exception:
            # Another task created it in the meantime.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return str(experiment.experiment_id)

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: ``(True, where it reached)`` or ``(False, the error)``."""
        try:
            self.get_client().search_experiments(max_results=1)
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        return True, f"reached {self.settings().tracking_uri}"


def build_client(settings: MlflowSettings) -> MlflowClient:
    """One ``MlflowClient`` that authenticates with ``settings``' credentials, without the env.

    MLflow 3.17 reads credentials only from the environment (``MLFLOW_TRACKING_TOKEN`` /
    ``_USERNAME`` / ``_PASSWORD`` through ``mlflow.utils.credentials.get_default_host_creds``),
    looked up again on every request. Its public ``RestStore`` takes a callable returning
    ``MlflowHostCreds``, so this function gives this one client its own tracking and registry
    ``RestStore`` built from our creds, and an artifact repository with the same creds for
    proxied (``mlflow-artifacts:``) uploads. The private parts touched are the two store
    holders of this client instance (``_tracking_client``, ``_registry_client_lazy``) and one
    artifact-repo method; nothing global is patched. Keep every such detail in this function.
    """
    # mlflow is heavy: imported only when a client is built.
    from mlflow import MlflowClient
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository
    from mlflow.store.model_registry.rest_store import RestStore as RegistryRestStore
    from mlflow.store.tracking.rest_store import RestStore as TrackingRestStore
    from mlflow.tracking._model_registry.client import ModelRegistryClient
    from mlflow.tracking._tracking_service.client import TrackingServiceClient
    from mlflow.utils.rest_utils import MlflowHostCreds

    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    if not settings.is_remote or settings.auth == "none":
        return client

    def creds_for(uri: str) -> MlflowHostCreds:
        return MlflowHostCreds(
            host=uri, username=settings.username, password=settings.password, token=settings.token
        )

    tracking_store = TrackingRestStore(lambda: creds_for(settings.tracking_uri))
    registry_uri = settings.registry_uri or settings.tracking_uri
    registry_store = RegistryRestStore(lambda: creds_for(registry_uri))

    class _AuthArtifactRepository(HttpArtifactRepository):
        @property
        def _host_creds(self) -> MlflowHostCreds:
            return creds_for(self.artifact_uri)

    class _TrackingClient(TrackingServiceClient):
        @property
        def store(self) -> Any:
            return tracking_store

        def _get_artifact_repo(self, resource_id: str, *, resource: Any = "run") -> Any:
            repo = super()._get_artifact_repo(resource_id, resource=resource)
            if isinstance(repo, HttpArtifactRepository):
                return _AuthArtifactRepository(repo.artifact_uri)
            return repo

    class _RegistryClient(ModelRegistryClient):
        @property
        def store(self) -> Any:
            return registry_store

    client._tracking_client = _TrackingClient(settings.tracking_uri)
    client._registry_client_lazy = _RegistryClient(registry_uri, settings.tracking_uri)  # type: ignore[attr-defined]
    return client
