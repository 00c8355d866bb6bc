"""compile_train on a traced graph, a torch module and an ONNX file; the train session's state:
state_dict, checkpoints, artifacts, eval, learning rates; and mistakes reported as graphc errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc
from graphc.errors import GraphcError, InputError
from graphc.examples import seeds
from graphc.examples.train_models import CASES, batches, torch_step
from graphc.runtime.train import load_train
from graphc.training import LossFn, TrainError, compile_train, compile_train_step

MLP = CASES["mlp"]
SGD = "sgd:lr=0.1,momentum=0.9"
QUIET = {"log": lambda *a: None}


def _torch_losses(spec_opt, data):
    ref = MLP.make()
    opt = spec_opt(ref.parameters())
    return [torch_step(ref, opt, MLP, x, y) for x, y in data], ref


def _example(data):
    return data[0][0]


@pytest.fixture(scope="module")
def mlp_step():
    data = batches(MLP, 1)
    return compile_train_step(MLP.make(), loss="mse", optimizer=SGD, example_inputs=(torch.from_numpy(_example(data)),), **QUIET)


def test_traced_graph_trains_like_torch():
    data = batches(MLP, 3)
    weights = seeds.state_dict_numpy(MLP.make())
    graph = graphc.trace(seeds.graphc_mlp(weights), _example(data))
    sess = compile_train(graph, loss="mse", optimizer=SGD, **QUIET)
    ours = [sess.step(x, y) for x, y in data]
    theirs, ref = _torch_losses(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), data)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(sess.params[name], p.detach().numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_onnx_model_trains_like_torch(tmp_path):
    data = batches(MLP, 3)
    path = seeds.export_onnx(MLP.make().eval(), _example(data), str(tmp_path / "mlp.onnx"))
    sess = compile_train(path, loss="mse", optimizer="adamw:lr=1e-3", **QUIET)
    ours = [sess.step(x, y) for x, y in data]
    theirs, ref = _torch_losses(lambda ps: torch.optim.AdamW(ps, lr=1e-3), data)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    final = sess.params
    for name, p in ref.named_parameters():  # the exporter keeps torch's parameter names
        t = p.detach().numpy()
        assert np.abs(final[name] - t).max() <= 1e-4 * np.abs(t).max(), name


def test_custom_loss_expression():
    data = batches(MLP, 2)
    target = np.zeros((64, 10), np.float32)

    def weighted_l1(out, t):  # any scalar expression of the outputs and targets, in graphc ops
        return (abs(out - t) * 3.0).mean()

    sess = compile_train(MLP.make(), loss=weighted_l1, targets=[target], optimizer="sgd:lr=0.5",
                         example_inputs=(torch.from_numpy(_example(data)),), **QUIET)
    ref = MLP.make()
    opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    for x, y in data:
        ours = sess.step(x, y)
        opt.zero_grad()
        loss = ((ref(torch.from_numpy(x)) - torch.from_numpy(y)).abs() * 3.0).mean()
        loss.backward()
        opt.step()
        np.testing.assert_allclose(ours, loss.item(), rtol=1e-5)
    np.testing.assert_allclose(sess.params["2.weight"], ref[2].weight.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_eval_uses_the_current_weights(mlp_step):
    sess = mlp_step.session()
    data = batches(MLP, 2, seed=5)
    before = sess.eval(data[0][0])[0]
    sess.step(*data[0])
    after = sess.eval(data[0][0])[0]
    assert not np.allclose(before, after)
    ref = MLP.make()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in sess.params.items()})
    np.testing.assert_allclose(after, ref(torch.from_numpy(data[0][0])).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_state_dict_round_trip_replays_the_same_steps(mlp_step):
    sess = mlp_step.session()
    data = batches(MLP, 5, seed=6)
    for x, y in data[:2]:
        sess.step(x, y)
    saved = sess.state_dict()
    assert saved["optimizer"]["step"] == 2 and set(saved["optimizer"]["state"]["0.weight"]) == {"momentum_buffer"}
    first = [sess.step(x, y) for x, y in data[2:]]
    sess.load_state_dict(saved)
    assert sess.step_count == 2
    again = [sess.step(x, y) for x, y in data[2:]]
    assert first == again  # same state, same batches: bit-identical losses


def test_checkpoint_and_artifact_resume_bit_identically(mlp_step, tmp_path):
    data = batches(MLP, 4, seed=7)
    art = mlp_step.save(str(tmp_path / "train.gca"))
    sess = load_train(art)  # the TVM runtime alone
    for x, y in data[:2]:
        sess.step(x, y)
    ckpt = sess.save_checkpoint(str(tmp_path / "ckpt.gtc"))
    expected = [sess.step(x, y) for x, y in data[2:]]
    resumed = load_train(art)
    resumed.load_checkpoint(ckpt)
    assert resumed.step_count == 2
    assert [resumed.step(x, y) for x, y in data[2:]] == expected
    for name, value in sess.params.items():
        np.testing.assert_array_equal(resumed.params[name], value)


def test_learning_rate_input_and_schedule(mlp_step):
    sess = mlp_step.session()
    (x, y), = batches(MLP, 1, seed=8)
    start = sess.params
    sess.step(x, y, lr=0.0)  # momentum buffer fills, parameters stay (no weight decay)
    for name, value in sess.params.items():
        np.testing.assert_array_equal(value, start[name])
    seen = []
    sess.lr_schedule = lambda step: seen.append(step) or 0.0
    sess.step(x, y)
    assert seen == [1] and sess.current_lr() == 0.0
    for name, value in sess.params.items():
        np.testing.assert_array_equal(value, start[name])
    sess.lr_schedule = None
    sess.step(x, y)
    assert not np.array_equal(sess.params["0.weight"], start["0.weight"])


def test_mistakes_are_graphc_errors(mlp_step, tmp_path):
    sess = mlp_step.session()
    (x, y), = batches(MLP, 1)
    with pytest.raises(InputError, match="missing 2.bias"):
        sess.load_state_dict({"params": {k: v for k, v in sess.params.items() if k != "2.bias"}})
    with pytest.raises(GraphcError, match="0.weight"):
        sess.load_state_dict({"params": {**sess.params, "0.weight": np.zeros((3, 3), np.float32)}})
    with pytest.raises(GraphcError, match="x"):
        sess.step(x[:, :10], y)
    (tmp_path / "junk.gtc").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="junk.gtc: not a graphc train checkpoint"):
        sess.load_checkpoint(str(tmp_path / "junk.gtc"))
    with pytest.raises(TrainError, match="no option.*betas"):
        compile_train(MLP.make(), loss="mse", optimizer="sgd:betas=0.9/0.99", example_inputs=(torch.from_numpy(x),), **QUIET)
    with pytest.raises(TrainError, match="unknown optimizer 'lion'"):
        compile_train(MLP.make(), loss="mse", optimizer="lion", example_inputs=(torch.from_numpy(x),), **QUIET)
    with pytest.raises(TrainError, match="must return a 0-d float"):
        compile_train(MLP.make(), loss=LossFn(lambda out, t: out - t, targets=[y]), example_inputs=(torch.from_numpy(x),), **QUIET)


def test_checkpoint_of_another_optimizer_is_refused(mlp_step, tmp_path):
    (x, _), = batches(MLP, 1)
    adam = compile_train(MLP.make(), loss="mse", optimizer="adam", example_inputs=(torch.from_numpy(x),), **QUIET)
    ckpt = adam.save_checkpoint(str(tmp_path / "adam.gtc"))
    with pytest.raises(InputError, match="adam optimizer.*uses sgd"):
        mlp_step.session().load_checkpoint(ckpt)
