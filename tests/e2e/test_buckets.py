"""Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
GetBucketLocation, bucket ACL, and the operations Reservoir does not support."""

import pytest

from conftest import delete_bucket_quietly, err_code, expect_error, unique_bucket_name


def test_create_and_list_buckets(s3):
    names = sorted(unique_bucket_name("lb") for _ in range(3))
    try:
        for n in names:
            resp = s3.create_bucket(Bucket=n)
            assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
        listing = s3.list_buckets()
        listed = [b["Name"] for b in listing["Buckets"]]
        for n in names:
            assert n in listed
        # S3 lists buckets in lexicographic order of their names
        assert listed == sorted(listed)
        for b in listing["Buckets"]:
            if b["Name"] in names:
                assert b["CreationDate"] is not None
        assert "Owner" in listing and listing["Owner"].get("ID")
    finally:
        for n in names:
            delete_bucket_quietly(s3, n)


@pytest.mark.parametrize("name", ["abc", "a-b.c1", "0123456789", "x" * 63, "my.bucket.name"])
def test_create_bucket_valid_names(s3, name):
    # names must be unique per test run; keep the shape of each case
    if name == "x" * 63:
        real = unique_bucket_name("x")
        real = real + "x" * (63 - len(real))
    elif name == "abc":
        real = "abc" + unique_bucket_name("")[-8:]
    else:
        real = f"{name}{unique_bucket_name('')[-8:]}"
    assert 3 <= len(real) <= 63
    try:
        s3.create_bucket(Bucket=real)
        s3.head_bucket(Bucket=real)
    finally:
        delete_bucket_quietly(s3, real)


_MOTO_NAME_RULES = pytest.mark.moto_deviates(reason="moto checks only the length of bucket names")


@pytest.mark.parametrize("name", [
    "AB",                                          # upper case and too short
    "a",                                           # too short
    pytest.param("-abc", marks=_MOTO_NAME_RULES),  # must start with a letter or digit
    pytest.param("abc-", marks=_MOTO_NAME_RULES),  # must end with a letter or digit
    pytest.param("a..b", marks=_MOTO_NAME_RULES),  # adjacent periods
    pytest.param("192.168.1.1", marks=_MOTO_NAME_RULES),  # formatted like an IP address
    pytest.param("Abcdef", marks=_MOTO_NAME_RULES),  # upper case
    pytest.param("ab_cd", marks=_MOTO_NAME_RULES),   # underscore
    "x" * 64,                                      # too long
])
def test_create_bucket_invalid_name(s3, name):
    expect_error(s3.create_bucket, Bucket=name, code="InvalidBucketName", status=400)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.reservoir_only
def test_create_bucket_twice_already_owned(s3, bucket):
    # S3 answers 409 BucketAlreadyOwnedByYou in every region except us-east-1, where it keeps
    # a legacy 200 (as moto does). Reservoir's contract is the error, whatever the region.
    expect_error(s3.create_bucket, Bucket=bucket, code="BucketAlreadyOwnedByYou", status=409)
    s3.head_bucket(Bucket=bucket)  # still there


def test_head_bucket(s3, bucket):
    resp = s3.head_bucket(Bucket=bucket)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_head_bucket_missing_is_404(s3):
    e = expect_error(s3.head_bucket, Bucket=unique_bucket_name("nosuch"), status=404)
    assert err_code(e) in ("404", "NoSuchBucket", "Not Found")


def test_delete_bucket(s3):
    name = unique_bucket_name("del")
    s3.create_bucket(Bucket=name)
    resp = s3.delete_bucket(Bucket=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error(s3.head_bucket, Bucket=name, status=404)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    # the name can be reused
    s3.create_bucket(Bucket=name)
    s3.delete_bucket(Bucket=name)


def test_delete_bucket_not_empty(s3, bucket):
    s3.put_object(Bucket=bucket, Key="dir/obj", Body=b"x")
    expect_error(s3.delete_bucket, Bucket=bucket, code="BucketNotEmpty", status=409)
    assert s3.get_object(Bucket=bucket, Key="dir/obj")["Body"].read() == b"x"
    s3.delete_object(Bucket=bucket, Key="dir/obj")
    s3.delete_bucket(Bucket=bucket)
    expect_error(s3.head_bucket, Bucket=bucket, status=404)


def test_delete_missing_bucket(s3):
    expect_error(s3.delete_bucket, Bucket=unique_bucket_name("nosuch"), code="NoSuchBucket", status=404)


def test_get_bucket_location(s3, bucket):
    resp = s3.get_bucket_location(Bucket=bucket)
    # us-east-1 is reported as an empty LocationConstraint (None in boto3)
    assert resp.get("LocationConstraint") in (None, "", "us-east-1")


def test_get_bucket_location_missing_bucket(s3):
    expect_error(s3.get_bucket_location, Bucket=unique_bucket_name("nosuch"), code="NoSuchBucket", status=404)


def test_operations_on_missing_bucket(s3):
    name = unique_bucket_name("nosuch")
    expect_error(s3.put_object, Bucket=name, Key="k", Body=b"x", code="NoSuchBucket", status=404)
    expect_error(s3.get_object, Bucket=name, Key="k", code="NoSuchBucket", status=404)
    expect_error(s3.list_objects_v2, Bucket=name, code="NoSuchBucket", status=404)
    expect_error(s3.list_objects, Bucket=name, code="NoSuchBucket", status=404)
    expect_error(s3.create_multipart_upload, Bucket=name, Key="k", code="NoSuchBucket", status=404)


def test_get_bucket_acl_owner_full_control(s3, bucket):
    acl = s3.get_bucket_acl(Bucket=bucket)
    owner_id = acl["Owner"]["ID"]
    assert owner_id
    grants = acl["Grants"]
    assert any(g["Permission"] == "FULL_CONTROL" and g["Grantee"].get("ID") == owner_id
               and g["Grantee"].get("Type") == "CanonicalUser" for g in grants), grants


def test_get_object_acl_owner_full_control(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    acl = s3.get_object_acl(Bucket=bucket, Key="k")
    owner_id = acl["Owner"]["ID"]
    assert any(g["Permission"] == "FULL_CONTROL" and g["Grantee"].get("ID") == owner_id
               for g in acl["Grants"]), acl["Grants"]
    expect_error(s3.get_object_acl, Bucket=bucket, Key="missing", code="NoSuchKey", status=404)


# ---- unsupported operations: 501 NotImplemented, never a wrong success ----

@pytest.mark.reservoir_only
def test_put_bucket_versioning_not_implemented(s3, bucket):
    expect_error(s3.put_bucket_versioning, Bucket=bucket,
                 VersioningConfiguration={"Status": "Enabled"}, code="NotImplemented", status=501)


@pytest.mark.reservoir_only
def test_put_bucket_policy_not_implemented(s3, bucket):
    policy = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
              '"Action":"s3:GetObject","Resource":"arn:aws:s3:::%s/*"}]}' % bucket)
    expect_error(s3.put_bucket_policy, Bucket=bucket, Policy=policy, code="NotImplemented", status=501)


@pytest.mark.reservoir_only
def test_put_bucket_lifecycle_not_implemented(s3, bucket):
    expect_error(s3.put_bucket_lifecycle_configuration, Bucket=bucket,
                 LifecycleConfiguration={"Rules": [{"ID": "r", "Status": "Enabled",
                                                    "Filter": {"Prefix": "tmp/"},
                                                    "Expiration": {"Days": 1}}]},
                 code="NotImplemented", status=501)
    # and nothing was stored by it: the bucket still works normally
    s3.put_object(Bucket=bucket, Key="tmp/x", Body=b"1")
    assert s3.get_object(Bucket=bucket, Key="tmp/x")["Body"].read() == b"1"


@pytest.mark.reservoir_only
def test_create_bucket_makes_ufs_dir(server, s3, bucket):
    assert server.ufs_path(bucket).is_dir()


@pytest.mark.reservoir_only
@pytest.mark.parametrize("call,code", [
    ("get_bucket_policy", "NoSuchBucketPolicy"),
    ("get_bucket_cors", "NoSuchCORSConfiguration"),
    ("get_bucket_lifecycle_configuration", "NoSuchLifecycleConfiguration"),
    ("get_bucket_website", "NoSuchWebsiteConfiguration"),
    ("get_bucket_tagging", "NoSuchTagSet"),
    ("get_bucket_encryption", "ServerSideEncryptionConfigurationNotFoundError"),
])
def test_bucket_configurations_read_as_never_set(s3, bucket, call, code):
    # What S3 answers for a bucket without that configuration (s3cmd info asks).
    expect_error(getattr(s3, call), Bucket=bucket, code=code, status=404)
