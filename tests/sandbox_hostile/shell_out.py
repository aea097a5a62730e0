# os.system and subprocess work, but only inside the sandbox: same limits, same view.
import os
import subprocess

os.system(f"id; echo pwned > {ARGS['target']}")
done = subprocess.run(["sh", "-c", f"echo pwned > {ARGS['target']}; cat /etc/shadow"],
                      capture_output=True, text=True)
print("subprocess rc", done.returncode, done.stderr.strip().replace("\n", " | "))
