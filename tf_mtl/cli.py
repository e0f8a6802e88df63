"""The ``tf-mtl`` command. Thin on purpose: parse arguments, call library functions."""

import argparse
import os
import sys


def _report(results_or_error):
    """Prints the summary of a finished (or stopped) pipeline and how to serve what it pushed."""
    from pipelines.runner import PipelineStopped, format_summary

    results, error = results_or_error
    if results:
        print("\n" + format_summary(results))
    if isinstance(error, PipelineStopped):
        print(f"\nThe pipeline stopped at {error.step}: {error.reason}\nReport: {error.artifact.path}", file=sys.stderr)
        return 1
    pushed = results[-1].artifact.figures
    if not pushed.get("pushed"):
        print(f"\nNo model pushed: {pushed.get('reason', 'not blessed')}.", file=sys.stderr)
        return 1
    path = os.path.relpath(pushed["path"])
    path = pushed["path"] if path.startswith("..") else path
    base = os.path.dirname(path)
    print(f"\nBlessed model pushed to {path}. Serve it with:\n"
          f"  tf-mtl serve --model_name {os.path.basename(base)} --model_base_path {base}")
    return 0


def _collect(run):
    from pipelines.runner import PipelineStopped

    try:
        return run(), None
    except PipelineStopped as err:
        return err.results, err


def serve(args):
    """Runs a ``ModelServer`` from the ``serve`` arguments until interrupted."""
    import gc
    import logging

    from tf_mtl.serving import ModelServer, configure_threads

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure_threads(args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism)
    caps = {} if args.max_batch_size is None else {"max_batch_size": args.max_batch_size or None}
    if args.max_request_bytes is not None:
        caps["max_request_bytes"] = args.max_request_bytes
    server = ModelServer(
        args.model_name,
        args.model_base_path,
        port=args.port,
        rest_api_port=args.rest_api_port or None,
        host=args.host,
        poll_seconds=args.poll_seconds,
        **caps,
    )
    # TensorFlow's start-up leaves ~450,000 long-lived objects: frozen, the full collection that
    # frees an unloaded version after each swap scans none of them (about 50 ms instead of 0.5 s).
    # Frozen before the first version loads, so that every version can still be freed.
    gc.freeze()
    server.start()
    try:
        server.wait()
    except KeyboardInterrupt:
        print("Interrupted: stopping the server.", file=sys.stderr)
    finally:
        server.stop()
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tf-mtl", description="Multi-task ranking models on TensorFlow/Keras.")
    commands = parser.add_subparsers(dest="command", required=True)
    quick = commands.add_parser("quickstart", help="run the whole pipeline on generated click/conversion data")
    quick.add_argument("--model", default="mmoe", help="shared_bottom, esmm, mmoe, omoe, ple, aitm or single_task")
    quick.add_argument("--samples", type=int, default=60_000, help="generated impressions")
    quick.add_argument("--seed", type=int, default=0)
    quick.add_argument("--no-tune", action="store_true", help="skip the hyperparameter search")
    quick.add_argument("--workdir", default="pipeline_runs/quickstart", help="pipeline root: artifacts and cache")
    quick.add_argument("--output-dir", default="saved_models", help="where blessed models are pushed")
    pipeline = commands.add_parser("pipeline", help="run a pipeline from a YAML config")
    pipeline_commands = pipeline.add_subparsers(dest="pipeline_command", required=True)
    run = pipeline_commands.add_parser("run", help="run every step whose inputs changed; reuse the others")
    run.add_argument("config", help="the pipeline's YAML config")
    run.add_argument("--data", help="the data file (sets data.path)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. training.epochs=5")
    run.add_argument("--force", action="append", default=[], metavar="STEP", help="run this step even if cached")
    serve_parser = commands.add_parser("serve", help="serve SavedModels over TF Serving's gRPC and REST APIs")
    serve_parser.add_argument("--model_name", required=True, help="the name requests use")
    serve_parser.add_argument("--model_base_path", required=True, help="folder of numeric version folders")
    serve_parser.add_argument("--port", type=int, default=8500, help="gRPC port")
    serve_parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port; 0 disables REST")
    serve_parser.add_argument("--host", default="127.0.0.1",
                              help="address to bind (default loopback only; any other address logs a warning: no authentication)")
    # The caps' defaults are ModelServer's (tf_mtl.serving.server), named here without importing TensorFlow.
    serve_parser.add_argument("--max_batch_size", type=int, help="largest batch per request (default 8192 rows); 0 lifts the cap")
    serve_parser.add_argument("--max_request_bytes", type=int, help="largest request body (default 64 MiB)")
    serve_parser.add_argument("--poll_seconds", type=float, default=1.0, help="how often to look for new versions")
    serve_parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0,
                              help="threads per op; 1 gives single requests the lowest latency (default 0: one per core)")
    serve_parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0, help="ops run at once (default 0: one per core)")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.command == "serve":
        return serve(args)
    if args.command == "pipeline":
        from pipelines.config import ConfigError, load_config
        from pipelines.pipeline import create_pipeline
        from pipelines.runner import run_pipeline

        overrides = ([f"data.path={args.data}"] if args.data else []) + args.set
        try:
            config = load_config(args.config, overrides)
        except (ConfigError, FileNotFoundError) as err:
            print(f"tf-mtl pipeline: {err}", file=sys.stderr)
            return 2
        steps = create_pipeline(config)
        unknown = sorted(set(args.force) - {step.name for step in steps})
        if unknown:
            parser.error(f"--force: unknown steps {unknown}; the steps are {[step.name for step in steps]}")
        return _report(_collect(lambda: run_pipeline(steps, config["pipeline_root"], force=args.force)))
    from pipelines.quickstart import quickstart
    from tf_mtl.models import PRESETS

    if args.model not in PRESETS:
        parser.error(f"--model: unknown model {args.model!r}; choose one of {sorted(PRESETS)}")
    return _report(
        _collect(lambda: quickstart(args.model, args.samples, args.workdir, args.output_dir, not args.no_tune, args.seed)[1])
    )


if __name__ == "__main__":
    sys.exit(main())
