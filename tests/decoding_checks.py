"""Checks every incremental decoder must pass, as fairseq's SequenceGenerator drives it."""
import torch


def decode_steps(model, prev_output_tokens, encoder_out, incremental_state) -> list:
    """What fairseq's SequenceGenerator does: the whole prefix each step, with a cache; per step
    the newest position's logits and the decoder's extra output."""
    steps = []
    for t in range(prev_output_tokens.size(1)):
        logits, extra = model.decoder(prev_output_tokens[:, : t + 1], encoder_out, incremental_state)
        assert logits.size(1) == 1, "with a cached state only the new token is decoded"
        steps.append((logits[:, 0], extra))
    return steps


def assert_reorder_follows_the_beam(model, src, lengths, prev, tolerance=1e-5) -> None:
    """After k cached steps, reorder (with repeats, as beam search does) and take one more step:
    equal to decoding the reordered batch from scratch, and different without the reorder."""
    k = 3
    new_order = torch.tensor([2, 2, 0, 5, 1, 1])
    with torch.no_grad():
        encoder_out = model.encoder(src, lengths)
        state = {}
        decode_steps(model, prev[:, :k], encoder_out, state)
        stale_state = {key: dict(value) for key, value in state.items()}
        model.decoder.reorder_incremental_state_scripting(state, new_order)
        reordered_out = model.encoder.reorder_encoder_out(encoder_out, new_order)
        step, _ = model.decoder(prev[new_order, : k + 1], reordered_out, state)
        expected, _ = model(src[new_order], lengths[new_order], prev[new_order])
        stale, _ = model.decoder(prev[new_order, : k + 1], reordered_out, stale_state)
    torch.testing.assert_close(step[:, 0], expected[:, k], atol=tolerance, rtol=tolerance)
    assert not torch.allclose(stale[:, 0], expected[:, k], atol=1e-3), "the test must detect a missing reorder"
