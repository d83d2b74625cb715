package projections

// ApplyLockName is the name of the lock a projection's writers take, for
// tests that hold it to stop a replay at its swap.
var ApplyLockName = applyLockName
