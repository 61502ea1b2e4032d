// Package servers gives the workload check real servers: PostgreSQL 15 and
// Redis 7 from Debian bookworm's packages, for the VM's arch.
//
// Files fetches the packages through kernels.FetchPackages (InRelease
// signed, Packages and each .deb checked by SHA-256, cached and unpacked
// once) and lists what the guest needs, at the paths the packages install
// them:
//
//   - postgres and initdb (/usr/lib/postgresql/15/bin), the server's
//     loadable modules (lib/*.so but the JIT, llvmjit.so, whose libLLVM is
//     not fetched) and its share directory (catalog bootstrap, time zone
//     sets);
//   - redis-server (a link to redis-check-rdb in the packages: Redis picks
//     its role from its name, so it is packed as redis-server);
//   - dash as /bin/sh, which initdb runs its bootstrap through (popen);
//   - the UTC zone of tzdata;
//   - each program's interpreter and shared-library closure, resolved
//     in the unpacked tree as the loader would (package program);
//   - protocol.ServersManifestPath, naming the packages and versions.
//
// Only the libraries the programs load travel; of the 51 packages fetched
// per arch (the Depends closure through Section: libs packages) most are
// there for the closure's sake.
package servers
