import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { writeImageArchive } from "../../setup/image-archive.js";
import { archiveImages, parseReference } from "./image-references.js";

describe("image references", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-refs-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("resolves names as containerd does: docker.io and library/ by default, a registry when the first part has a dot, a port or is localhost", () => {
    assert.deepEqual(parseReference("app"), {
      reference: "docker.io/library/app:latest",
      repository: "library/app",
      tag: "latest",
    });
    assert.deepEqual(parseReference("team/app:1.2"), {
      reference: "docker.io/team/app:1.2",
      repository: "team/app",
      tag: "1.2",
    });
    assert.deepEqual(parseReference("ghcr.io/org/app:v1"), {
      reference: "ghcr.io/org/app:v1",
      repository: "org/app",
      tag: "v1",
    });
    assert.deepEqual(parseReference("localhost:5000/app:dev"), {
      reference: "localhost:5000/app:dev",
      repository: "app",
      tag: "dev",
    });
    assert.deepEqual(parseReference("localhost/app"), {
      reference: "localhost/app:latest",
      repository: "app",
      tag: "latest",
    });
  });

  it("refuses digests and malformed names, naming them", () => {
    assert.throws(() => parseReference("app@sha256:abc"), /"app@sha256:abc" has a digest/);
    assert.throws(() => parseReference("Upper/App:1"), /"Upper\/App:1" is not a valid image name/);
  });

  it("lists the tagged images of a docker-archive, and refuses a tar that is no image archive", async () => {
    const archive = join(dir, "app.tar");
    await writeImageArchive(
      {
        reference: "registry.example.com/team/hello:1.0",
        entries: [{ type: "file", path: "hello", content: Buffer.from("hi") }],
      },
      archive,
    );
    const images = await archiveImages(archive);
    assert.deepEqual(
      images.map((i) => [i.reference, i.repository, i.tag]),
      [["registry.example.com/team/hello:1.0", "team/hello", "1.0"]],
    );
    assert.match(images[0].source, /^docker-archive:.*app\.tar:registry\.example\.com\/team\/hello:1\.0$/);
    const notImage = join(dir, "plain.txt");
    await writeFile(notImage, "not a tar at all, just text");
    await assert.rejects(archiveImages(notImage), /neither a docker-archive|not a readable tar/);
  });
});
