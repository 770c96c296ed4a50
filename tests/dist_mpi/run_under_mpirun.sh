#!/bin/sh
# ctest wrapper for the tests that run under mpirun: first checks that mpirun can start a job
# here at all (it cannot, e.g., in a network namespace without a loopback interface, where its
# PMIx server fails); if not, prints why and exits 77, which ctest reports as skipped.
# Usage: run_under_mpirun.sh MPIEXEC NP [MPIEXEC FLAGS...] -- PROGRAM [ARGS...]
mpiexec="$1"; np="$2"; shift 2
flags=""
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do flags="$flags $1"; shift; done
shift
if ! probe=$("$mpiexec" -np 1 $flags true 2>&1); then
  echo "SKIP: mpirun cannot start a job on this machine:"
  echo "$probe"
  exit 77
fi
exec "$mpiexec" -np "$np" $flags "$@"
