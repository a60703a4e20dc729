"""The default (ci) profile kills every mutant in the zoo, and passes the code they derive from."""

import pytest

from conformance.engine import Job, run_check
from conformance.mutants.hunt import run_zoo
from conformance.mutants.zoo import ZOO


def test_zoo_is_big_and_documented():
    assert len(ZOO) >= 20
    for mutant in ZOO:
        assert mutant.bug_class and mutant.__doc__ and "Exposed by" in mutant.__doc__, mutant


# Forward mutants the ci profile takes 7-20 s each to catch on seed 0, hunted by `make mutants` only
# (so that `make test` stays within 6 minutes on 2 cores); each bug family keeps a faster member
# here: strides (StrideOnWrongAxis), precision (TF32Inputs), validation
# (RejectsKernelLargerThanInput), activations (BiasAfterActivation), low precision
# (BiasAfterRounding, Float32Result). The special-value family (NaNSwallowingRelu, InfClampedInput:
# 12-16 s each) is left to `make mutants`.
MAKE_MUTANTS_ONLY = {"IgnoresStrides", "Float16Accumulation", "InfClampedInput", "GeluTanhApproximation",
                     "AcceptsStrideWithDilation", "SoftmaxOverChannels", "BFloat16Accumulation",
                     "Float16PartialSumOverflow", "FlushesSubnormalInputs", "NaNSwallowingRelu"}


def test_every_forward_mutant_is_caught_with_its_expected_status():
    """All forward mutants but MAKE_MUTANTS_ONLY. The backward zoo is hunted by `make mutants`;
    tests/test_gradients.py runs two of it."""
    zoo = [mutant for mutant in ZOO if mutant.__name__ not in MAKE_MUTANTS_ONLY]
    assert len(zoo) == len(ZOO) - len(MAKE_MUTANTS_ONLY), "a name in MAKE_MUTANTS_ONLY is not in the zoo"
    table = run_zoo("ci", seed=0, jobs=2, zoo=zoo)
    missed = table[~table["caught"]]
    assert missed.empty, f"not caught: {missed['mutant'].tolist()}"
    for row in table.itertuples():
        expected = next(m for m in ZOO if m.__name__ == row.mutant).expected
        assert row.status in expected, row


@pytest.mark.parametrize("check", ["exact", "realistic", "extreme", "invalid"])
def test_the_unmutated_base_passes(check):
    records = run_check(Job("conformance.mutants.zoo:Mutant", check, "ci", 1, database=None)).records
    assert records and not [r.repro for r in records if r.status.failing]


@pytest.mark.parametrize("check", ["realistic", "extreme"])
def test_the_unmutated_low_precision_base_passes(check):
    """bfloat16 in, float32 sums, one rounding: what the low-precision mutants break."""
    job = Job("conformance.mutants.zoo:LowPrecisionMutant", check, "ci", 1, database=None)
    records = run_check(job).records
    assert records and {r.dtype for r in records} == {"bfloat16"}
    assert not [r.repro for r in records if r.status.failing]
