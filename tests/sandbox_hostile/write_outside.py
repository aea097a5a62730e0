# Tries to write outside its working directory; reports what happened per path.
import errno
import json

report = {}
for path in ARGS["paths"]:
    try:
        with open(path, "w") as fh:
            fh.write("pwned\n")
        report[path] = "written"
    except OSError as exc:
        report[path] = errno.errorcode.get(exc.errno, str(exc.errno))
print(json.dumps(report))
