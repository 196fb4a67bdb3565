import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { capacityRefusal, DEFAULT_TENANT_LIMITS, NO_LIMITS, policyRefusal, type TokenIdentity } from "./quota.js";

const ci: TokenIdentity = {
  id: 2,
  name: "ci",
  admin: false,
  limits: {
    maxClusters: 2,
    maxTtlMinutes: 120,
    sizes: ["1-small"],
    privileged: false,
    maxServices: null,
    maxServiceMinutes: null,
  },
};
const admin: TokenIdentity = { id: 1, name: "admin", admin: true, limits: NO_LIMITS };

describe("policyRefusal", () => {
  it("allows what the token's limits allow", () => {
    assert.equal(policyRefusal(ci, { privileged: false, size: "1-small" }, 120), undefined);
    assert.equal(policyRefusal(admin, { privileged: true, size: "1-large" }, 7 * 24 * 60), undefined);
  });

  it("refuses privileged, a size not listed and a TTL past the limit, each as forbidden naming the field", () => {
    assert.deepEqual(policyRefusal(ci, { privileged: true, size: "1-small" }, 10), {
      type: "forbidden",
      message: 'token "ci" may not create privileged clusters (privileged)',
    });
    assert.deepEqual(policyRefusal(ci, { privileged: false, size: "1-mid" }, 10), {
      type: "forbidden",
      message: 'token "ci" may not create size "1-mid" (size); allowed: 1-small',
    });
    assert.deepEqual(policyRefusal(ci, { privileged: false, size: "1-small" }, 121), {
      type: "forbidden",
      message: 'token "ci" may keep clusters for at most 120 minutes (ttlMinutes 121)',
    });
  });

  it("gives a tenant token made without limits three clusters, a day, any size, not privileged", () => {
    const tenant: TokenIdentity = { id: 3, name: "t", admin: false, limits: DEFAULT_TENANT_LIMITS };
    assert.equal(policyRefusal(tenant, { privileged: false, size: "1-large" }, 24 * 60), undefined);
    assert.equal(policyRefusal(tenant, { privileged: false, size: "1-small" }, 24 * 60 + 1)?.type, "forbidden");
    assert.equal(policyRefusal(tenant, { privileged: true, size: "1-small" }, 10)?.type, "forbidden");
    assert.equal(capacityRefusal(tenant, { owner: 3, total: 3 }, 100)?.type, "forbidden");
  });
});

describe("capacityRefusal", () => {
  it("refuses the token's quota first (forbidden), then the host's capacity (capacity, worth retrying)", () => {
    assert.equal(capacityRefusal(ci, { owner: 1, total: 1 }, 2), undefined);
    assert.deepEqual(capacityRefusal(ci, { owner: 2, total: 2 }, 2), {
      type: "forbidden",
      message:
        'quota: token "ci" may run 2 cluster(s) at once and runs 2 (sleeping ones count); stop or delete one first',
    });
    assert.deepEqual(capacityRefusal(ci, { owner: 1, total: 5 }, 5), {
      type: "capacity",
      message: "host capacity reached: 5 of 5 clusters are running; try again when one stops",
    });
  });

  it("holds an admin to the host's capacity though it has no quota", () => {
    assert.equal(capacityRefusal(admin, { owner: 50, total: 50 }, 51), undefined);
    assert.equal(capacityRefusal(admin, { owner: 51, total: 51 }, 51)?.type, "capacity");
  });
});
