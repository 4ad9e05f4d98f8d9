"""Training workers that emit canonical JSONL v1 telemetry on stdout (docs/telemetry-jsonl.md).

Qt-free. Run them as ``python -m gym_gui.workers.q_learning`` (ToyText, grid payloads) and
``python -m gym_gui.workers.cartpole_rgb`` (CartPole, PNG frames).
"""
