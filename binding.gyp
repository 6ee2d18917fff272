{
  "targets": [{
    "target_name": "hainit",
    "sources": ["native/addon.c", "native/spawn.c", "native/signals.c", "native/reap.c", "native/startstate.c", "native/peers.c"],
    "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
  }]
}
