import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { settledServiceEndpoints, type EndpointSlice, type Pod, type Service } from "./service-endpoints.js";

const NODE = "172.30.1.2";
const pod = (name: string, ip: string, ready: boolean, labels = { app: "web" }): Pod => ({
  metadata: { namespace: "default", name, labels },
  status: { phase: "Running", podIPs: [{ ip }], conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
});
const service = (name: string, selector?: Record<string, string>, extra: Service["spec"] = {}): Service => ({
  metadata: { namespace: "default", name },
  spec: { selector, ...extra },
});
const slice = (serviceName: string, endpoints: [string, boolean][]): EndpointSlice => ({
  metadata: { namespace: "default", name: `${serviceName}-x`, labels: { "kubernetes.io/service-name": serviceName } },
  endpoints: endpoints.map(([a, ready]) => ({ addresses: [a], conditions: { ready } })),
});
const kubernetes = [service("kubernetes"), slice("kubernetes", [[NODE, true]])] as const;

describe("settled service endpoints", () => {
  it("are where every selected pod is named with its readiness; rules must lead to the ready ones", () => {
    const got = settledServiceEndpoints(
      [kubernetes[0], service("web", { app: "web" })],
      [pod("a", "10.129.0.5", true), pod("b", "10.129.0.6", false), pod("other", "10.129.0.7", true, { app: "db" })],
      [
        kubernetes[1],
        slice("web", [
          ["10.129.0.5", true],
          ["10.129.0.6", false],
        ]),
      ],
      [NODE],
    );
    assert.deepEqual(got && [...got.ready].sort(), ["10.129.0.5", NODE]);
    assert.deepEqual(got && [...got.live].sort(), ["10.129.0.5", "10.129.0.6", "10.129.0.7", NODE]);
  });

  it("are not while a slice lacks a selected pod (the controller has not added this boot's address yet)", () => {
    assert.equal(
      settledServiceEndpoints(
        [service("web", { app: "web" })],
        [pod("a", "10.129.0.5", true)],
        [slice("web", [])],
        [NODE],
      ),
      undefined,
    );
    assert.equal(
      settledServiceEndpoints([service("web", { app: "web" })], [pod("a", "10.129.0.5", true)], [], [NODE]),
      undefined,
    );
  });

  it("are not while a slice names the last boot's address or the wrong readiness", () => {
    const services = [service("web", { app: "web" })];
    assert.equal(
      settledServiceEndpoints(services, [pod("a", "10.129.0.9", true)], [slice("web", [["10.129.0.5", true]])], [NODE]),
      undefined,
    );
    assert.equal(
      settledServiceEndpoints(
        services,
        [pod("a", "10.129.0.5", true)],
        [slice("web", [["10.129.0.5", false]])],
        [NODE],
      ),
      undefined,
    );
  });

  it("take publishNotReadyAddresses and terminating endpoints as the controller writes them", () => {
    const services = [service("web", { app: "web" }, { publishNotReadyAddresses: true })];
    const terminating: EndpointSlice = slice("web", [["10.129.0.5", true]]);
    terminating.endpoints!.push({ addresses: ["10.129.0.4"], conditions: { ready: false, terminating: true } });
    assert.deepEqual(
      [...settledServiceEndpoints(services, [pod("a", "10.129.0.5", false)], [terminating], [NODE])!.ready],
      ["10.129.0.5"],
    );
  });

  it("take a Service without a selector as its slices say, even to an address outside the cluster", () => {
    const got = settledServiceEndpoints([service("external")], [], [slice("external", [["192.0.2.7", true]])], [NODE]);
    assert.deepEqual([...got!.ready], ["192.0.2.7"]);
    assert.ok(got!.live.has("192.0.2.7"));
  });
});
