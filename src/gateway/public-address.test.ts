import assert from "node:assert/strict";
import { test } from "node:test";
import { choosePublicAddress, defaultRoute, interfaceAddress, listenScope } from "./public-address.js";

test("listen hosts: loopback, every address, or one address", () => {
  for (const h of ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"]) assert.equal(listenScope(h), "loopback", h);
  for (const h of ["0.0.0.0", "::", "[::]", ""]) assert.equal(listenScope(h), "unspecified", h);
  for (const h of ["192.0.2.2", "fd00::2", "tk.example.com"]) assert.equal(listenScope(h), "specific", h);
});

test("the public address: the listen address when specific, 127.0.0.1 on loopback, else the default route's", () => {
  const found = { defaultRouteAddress: "192.0.2.2", hostname: "box" };
  assert.equal(choosePublicAddress("198.51.100.4", found), "198.51.100.4");
  assert.equal(choosePublicAddress("[fd00::2]", found), "fd00::2");
  assert.equal(choosePublicAddress("localhost", found), "127.0.0.1");
  assert.equal(choosePublicAddress("127.0.0.1", found), "127.0.0.1");
  assert.equal(choosePublicAddress("0.0.0.0", found), "192.0.2.2");
  assert.equal(choosePublicAddress("::", found), "192.0.2.2");
  // No default route (an isolated host): the host name, for the operator's DNS to resolve.
  assert.equal(choosePublicAddress("0.0.0.0", { hostname: "box" }), "box");
});

test("the default route's interface from `ip -j route show default`, lowest metric first", () => {
  assert.deepEqual(defaultRoute('[{"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]}]'), {
    dev: "eth0",
    prefsrc: undefined,
  });
  assert.deepEqual(
    defaultRoute(
      '[{"dst":"default","dev":"wlan0","metric":600},{"dst":"default","dev":"eth0","prefsrc":"10.1.2.3","metric":100}]',
    ),
    { dev: "eth0", prefsrc: "10.1.2.3" },
  );
  assert.equal(defaultRoute("[]"), undefined);
});

test("the interface's global address of the family from `ip -j addr show dev`", () => {
  const eth0 = JSON.stringify([
    {
      ifname: "eth0",
      addr_info: [
        { family: "inet6", local: "fe80::1", scope: "link" },
        { family: "inet", local: "192.0.2.2", prefixlen: 24, scope: "global" },
        { family: "inet6", local: "fd00::2", prefixlen: 64, scope: "global" },
      ],
    },
  ]);
  assert.equal(interfaceAddress(eth0, "inet"), "192.0.2.2");
  assert.equal(interfaceAddress(eth0, "inet6"), "fd00::2");
  const linkLocalOnly = JSON.stringify([{ addr_info: [{ family: "inet6", local: "fe80::1", scope: "link" }] }]);
  assert.equal(interfaceAddress(linkLocalOnly, "inet6"), undefined);
});
