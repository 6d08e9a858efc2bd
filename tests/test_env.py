"""`stylecli env`: versions, devices, paths and registry files, as text or one JSON object."""

import hashlib
import json

from helpers import invoke, write_registry


def test_env_json_is_one_object_naming_versions_paths_and_present_files(tmp_path, monkeypatch, isolated_cache):
    (tmp_path / "have.bin").write_bytes(b"abc")
    sha = hashlib.sha256(b"abc").hexdigest()
    write_registry(tmp_path, monkeypatch, "".join(
        f'[{n}]\nwhat = "t"\nfile = "{n}.bin"\nsha256 = "{sha}"\nlicense = "t"\nsources = [{{ manual = "x" }}]\n'
        for n in ("have", "lack")))
    assert invoke("weights", "import", "have", tmp_path / "have.bin").exit_code == 0
    result = invoke("env", "--json")
    assert result.exit_code == 0, result.stderr
    (line,) = result.stdout.splitlines()
    info = json.loads(line)
    from importlib.metadata import version

    assert info["versions"]["torch"] == version("torch") and info["versions"]["numpy"] == version("numpy")
    assert info["versions"]["stylecli"] and info["versions"]["python"]
    assert info["devices"]["auto"] in ("cpu", "cuda", "mps")
    assert info["paths"]["cache"] == str(isolated_cache / "stylecli")
    assert info["paths"]["hub_cache"] == str(isolated_cache / "hf" / "hub")
    assert info["paths"]["registry"] == str(tmp_path / "weights.toml")
    assert info["registry_files"]["lack"] is None
    assert info["registry_files"]["have"].endswith("have.bin")

    text = invoke("env")
    assert text.exit_code == 0
    assert "registry files (1 of 2 here):" in text.stdout and "  lack: absent" in text.stdout
    assert f"  cache: {isolated_cache / 'stylecli'}" in text.stdout
