#!/bin/sh
# The `cluster` profile's one-shot MinIO set-up (docker/compose.yaml, service minio-init; the minio/mc image):
# the bucket, a policy that allows the service's calls on that bucket and nothing else, and the service's key
# (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY of .env) with that policy. Runs at every `up`: the bucket and its
# objects stay; the policy and the key are written again (a changed secret replaces the old one).
set -eu

fail() {
  echo "minio-init: $*" >&2
  exit 1
}

# Refuse before touching anything: an empty secret would leave MinIO on its well-known default or the service
# with a key anyone could guess. Lengths are MinIO's own minimums.
[ "${#MINIO_ROOT_USER}" -ge 3 ] || fail "set MINIO_ROOT_USER in .env (3 characters or more)"
[ "${#MINIO_ROOT_PASSWORD}" -ge 8 ] || fail "set MINIO_ROOT_PASSWORD in .env (8 characters or more)"
[ "${#SERVICE_ACCESS_KEY}" -ge 3 ] || fail "set AWS_ACCESS_KEY_ID in .env (3 characters or more)"
[ "${#SERVICE_SECRET_KEY}" -ge 8 ] || fail "set AWS_SECRET_ACCESS_KEY in .env (8 characters or more)"
# The service gets a key for its bucket only, not MinIO's root account.
[ "$SERVICE_ACCESS_KEY" != "$MINIO_ROOT_USER" ] || fail "AWS_ACCESS_KEY_ID must not be MINIO_ROOT_USER"

# Only shell built-ins and mc: the image has little else.
mc alias set cluster "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "cluster/$BUCKET"
# POLICY_FILE (docker/minio/policy.json) names BUCKET in its resources: test/integration/cluster-files.test.ts.
mc admin policy create cluster chunkscribe-service "$POLICY_FILE"
mc admin user add cluster "$SERVICE_ACCESS_KEY" "$SERVICE_SECRET_KEY"
# Attaching a policy the user already has changes nothing (mc skips it).
mc admin policy attach cluster chunkscribe-service --user "$SERVICE_ACCESS_KEY"
echo "minio-init: bucket $BUCKET and its key are ready"
