import assert from "node:assert/strict";
import { it } from "node:test";
import { nodeResolvConf, upstreamNameservers } from "./upstream-dns.js";

it("takes the host's IPv4 nameservers that are not loopback, at most three, and no search domains", () => {
  const hosts =
    "# managed\nsearch corp.example\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver ::1\nnameserver 192.0.2.1\n" +
    "nameserver 10.255.255.53\nnameserver 192.0.2.2\nnameserver 192.0.2.3\noptions edns0\n";
  assert.deepEqual(upstreamNameservers(hosts), ["10.255.255.53", "192.0.2.1", "192.0.2.2"]);
  assert.deepEqual(upstreamNameservers("nameserver 127.0.0.53\n"), []);
});

it("gives a cluster without egress its gateway, which refuses at once", async () => {
  assert.equal(await nodeResolvConf("none", "172.30.7.1"), "nameserver 172.30.7.1\n");
});
