# rm -rf of the home directory, the parent's HOME and a canary the test planted.
import os
import shutil
import subprocess

targets = [os.path.expanduser("~"), ARGS["home"], ARGS["canary_dir"]]
subprocess.run(["rm", "-rf", *targets], check=False)
for path in targets:
    shutil.rmtree(path, ignore_errors=True)
print("HOME" in os.environ, os.path.exists(ARGS["canary"]))
