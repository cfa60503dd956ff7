"""Checks the uploader policy end to end on moto, after `terraform apply` of test-moto/.

    python check_uploader.py ENDPOINT PUBLIC_BUCKET CONFIG_BUCKET POLICY_ARN [PACKAGES_BIN FIXTURES_DIR]

Creates an IAM user holding only the module's uploader policy, turns on moto's IAM enforcement,
and checks what that user may do: read/write static/* (and the config/_probe/* scratch objects)
in the public bucket and the whole private store, list both; nothing under config/ or elsewhere
in the public bucket, no other bucket, no bucket settings, no IAM. With PACKAGES_BIN it then
publishes a package with the real CLI under those credentials, which proves the policy is also
enough. Enforcement is turned off again at the end, whatever happens (so destroy can run).
moto ignores policy conditions; the module uses none.
Run with the moto venv's python (it has boto3).
"""

import os
import subprocess
import sys
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT, PUBLIC, CONFIG, POLICY_ARN = sys.argv[1:5]
PACKAGES_BIN = sys.argv[5] if len(sys.argv) > 5 else None
FIXTURES = sys.argv[6] if len(sys.argv) > 6 else None
CFG = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2})
failures = []


def client(service, key, secret):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=CFG,
    )


def set_auth(count):
    # Content-Type matters: with a form type moto reads an empty body.
    req = urllib.request.Request(
        f"{ENDPOINT}/moto-api/reset-auth",
        data=str(count).encode(),
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200, resp.status


def expect(what, allowed, call):
    try:
        call()
        ok = True
        detail = "allowed"
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code not in ("AccessDenied", "AccessDeniedException"):
            failures.append(f"{what}: unexpected error {code}: {e}")
            print(f"  FAIL {what}: {code}")
            return
        ok = False
        detail = code
    good = ok == allowed
    print(f"  {'ok  ' if good else 'FAIL'} {what}: {detail}")
    if not good:
        failures.append(f"{what}: expected {'allowed' if allowed else 'denied'}, got {detail}")


admin_iam = client("iam", "testing", "testing")
admin_s3 = client("s3", "testing", "testing")
admin_s3.create_bucket(Bucket="tf-moto-unrelated")
USER = f"uploader-check-{os.getpid()}"
admin_iam.create_user(UserName=USER)
admin_iam.attach_user_policy(UserName=USER, PolicyArn=POLICY_ARN)
key = admin_iam.create_access_key(UserName=USER)["AccessKey"]
s3 = client("s3", key["AccessKeyId"], key["SecretAccessKey"])
iam = client("iam", key["AccessKeyId"], key["SecretAccessKey"])

set_auth(0)
try:
    print("uploader policy on moto (IAM enforced):")
    put = lambda b, k: lambda: s3.put_object(Bucket=b, Key=k, Body=b"x")  # noqa: E731
    get = lambda b, k: lambda: s3.get_object(Bucket=b, Key=k)  # noqa: E731
    delete = lambda b, k: lambda: s3.delete_object(Bucket=b, Key=k)  # noqa: E731
    expect("put static/ in the public bucket", True, put(PUBLIC, "static/acme/x.apk"))
    expect("get static/ in the public bucket", True, get(PUBLIC, "static/acme/x.apk"))
    expect("delete static/ in the public bucket", True, delete(PUBLIC, "static/acme/x.apk"))
    expect("list the public bucket", True, lambda: s3.list_objects_v2(Bucket=PUBLIC))
    expect("list the private store", True, lambda: s3.list_objects_v2(Bucket=CONFIG))
    if PUBLIC != CONFIG:
        expect("probe config/_probe/ in the public bucket", True, put(PUBLIC, "config/_probe/p"))
        expect("delete the probe", True, delete(PUBLIC, "config/_probe/p"))
        expect("put config/ (keys) in the public bucket", False, put(PUBLIC, "config/acme/alpine/signing-key.pem"))
        expect("put a key in the private store", True, put(CONFIG, "config/_check/secret"))
        expect("get a key in the private store", True, get(CONFIG, "config/_check/secret"))
    else:
        expect("put config/ in the shared bucket", True, put(PUBLIC, "config/_check/secret"))
        expect("get config/ in the shared bucket", True, get(PUBLIC, "config/_check/secret"))
    expect("put outside static/ and config/", False, put(PUBLIC, "other/x"))
    expect("put at the bucket root", False, put(PUBLIC, "index.html"))
    expect("put into another bucket", False, put("tf-moto-unrelated", "static/x"))
    expect("list another bucket", False, lambda: s3.list_objects_v2(Bucket="tf-moto-unrelated"))
    expect("change the bucket policy", False, lambda: s3.delete_bucket_policy(Bucket=PUBLIC))
    expect("create a bucket", False, lambda: s3.create_bucket(Bucket="tf-moto-new"))
    expect("list IAM users", False, lambda: iam.list_users())

    if PACKAGES_BIN:
        print("publishing with the real CLI under the uploader's credentials:")
        env = dict(
            os.environ,
            AWS_ENDPOINT_URL=ENDPOINT,
            AWS_REGION="us-east-1",
            AWS_ACCESS_KEY_ID=key["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"],
            PACKAGES_STORAGE=f"s3://{PUBLIC}",
        )
        env.pop("AWS_PROFILE", None)
        if PUBLIC != CONFIG:
            env["PACKAGES_CONFIG_STORAGE"] = f"s3://{CONFIG}"
        fixtures = [os.path.join(FIXTURES, f) for f in ("package-x-1.0.0-r0.apk", "pretend-baselayout-1.0.0-r0.apk")]
        for args in (
            ["org", "create", "acme"],
            ["key", "generate", "--org", "acme", "--distro", "alpine", "--bits", "2048"],
            ["upload", "--create", "--org", "acme", "--version", "edge", "--repo", "main", *fixtures],
            ["doctor"],
        ):
            r = subprocess.run([PACKAGES_BIN, *args], env=env, capture_output=True, text=True, timeout=120)
            print(f"  {'ok  ' if r.returncode == 0 else 'FAIL'} packages {' '.join(args[:2])}: exit {r.returncode}")
            if r.returncode != 0:
                failures.append(f"packages {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
finally:
    set_auth("inf")

if PACKAGES_BIN:
    keys = [o["Key"] for o in admin_s3.list_objects_v2(Bucket=PUBLIC).get("Contents", [])]
    if "static/acme/alpine/edge/main/x86_64/APKINDEX.tar.gz" not in keys:
        failures.append(f"no index in the public bucket after the upload: {keys}")
    if PUBLIC != CONFIG and any(k.startswith("config/") and not k.startswith("config/_probe/") for k in keys):
        failures.append(f"private-tree objects in the public bucket: {keys}")

if failures:
    print("\n".join(["uploader check FAILED:", *failures]), file=sys.stderr)
    sys.exit(1)
print("uploader check passed")
