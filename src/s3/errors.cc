#include "s3/errors.h"

#include <cstring>

#include "s3/xml.h"

namespace reservoir::s3 {

namespace {

struct Row {
  const char* code;
  int http;
  Code generic;
  const char* message;
};

const Row kTable[] = {
    {"AccessDenied", 403, Code::permission_denied, "Access Denied"},
    {"AuthorizationHeaderMalformed", 400, Code::invalid_argument, "The authorization header is malformed"},
    {"AuthorizationQueryParametersError", 400, Code::invalid_argument, "Error parsing the X-Amz-Credential parameter"},
    {"BadDigest", 400, Code::invalid_argument, "The Content-MD5 or checksum you specified did not match what we received."},
    {"BucketAlreadyExists", 409, Code::already_exists, "The requested bucket name is not available."},
    {"BucketAlreadyOwnedByYou", 409, Code::already_exists, "Your previous request to create the named bucket succeeded and you already own it."},
    {"BucketNotEmpty", 409, Code::failed_precondition, "The bucket you tried to delete is not empty"},
    {"EntityTooLarge", 400, Code::invalid_argument, "Your proposed upload exceeds the maximum allowed object size."},
    {"EntityTooSmall", 400, Code::invalid_argument, "Your proposed upload is smaller than the minimum allowed object size."},
    {"IncompleteBody", 400, Code::invalid_argument, "You did not provide the number of bytes specified by the Content-Length HTTP header."},
    {"InternalError", 500, Code::internal, "We encountered an internal error. Please try again."},
    {"InvalidAccessKeyId", 403, Code::unauthenticated, "The AWS access key Id you provided does not exist in our records."},
    {"InvalidArgument", 400, Code::invalid_argument, "Invalid Argument"},
    {"InvalidBucketName", 400, Code::invalid_argument, "The specified bucket is not valid."},
    {"InvalidChunkSizeError", 400, Code::invalid_argument, "Only the last chunk is allowed to have a size less than 8192 bytes"},
    {"InvalidDigest", 400, Code::invalid_argument, "The Content-MD5 you specified is not valid."},
    {"InvalidPart", 400, Code::invalid_argument, "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."},
    {"InvalidPartOrder", 400, Code::invalid_argument, "The list of parts was not in ascending order. Parts must be ordered by part number."},
    {"InvalidRange", 416, Code::invalid_argument, "The requested range is not satisfiable"},
    {"InvalidRequest", 400, Code::invalid_argument, "Invalid Request"},
    {"InvalidStorageClass", 400, Code::invalid_argument, "The storage class you specified is not valid"},
    {"KeyTooLongError", 400, Code::invalid_argument, "Your key is too long"},
    {"MalformedXML", 400, Code::invalid_argument, "The XML you provided was not well-formed or did not validate against our published schema."},
    {"MethodNotAllowed", 405, Code::unimplemented, "The specified method is not allowed against this resource."},
    {"MissingContentLength", 411, Code::invalid_argument, "You must provide the Content-Length HTTP header."},
    {"MissingSecurityHeader", 400, Code::invalid_argument, "Your request is missing a required header."},
    {"NoSuchBucket", 404, Code::not_found, "The specified bucket does not exist"},
    {"NoSuchKey", 404, Code::not_found, "The specified key does not exist."},
    {"NoSuchUpload", 404, Code::not_found, "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed."},
    {"NoSuchTagSet", 404, Code::not_found, "The TagSet does not exist"},
    {"NotImplemented", 501, Code::unimplemented, "A header or query you provided implies functionality that is not implemented."},
    {"NotModified", 304, Code::failed_precondition, "Not Modified"},
    {"OperationAborted", 409, Code::aborted, "A conflicting operation is currently in progress against this resource. Please try again."},
    {"PreconditionFailed", 412, Code::failed_precondition, "At least one of the pre-conditions you specified did not hold"},
    {"RequestHeaderSectionTooLarge", 400, Code::invalid_argument, "Your request header section exceeds the maximum allowed size."},
    {"RequestTimeTooSkewed", 403, Code::unauthenticated, "The difference between the request time and the server's time is too large."},
    {"RequestTimeout", 400, Code::unavailable, "Your socket connection to the server was not read from or written to within the timeout period."},
    {"ServiceUnavailable", 503, Code::unavailable, "Please reduce your request rate."},
    {"SignatureDoesNotMatch", 403, Code::unauthenticated, "The request signature we calculated does not match the signature you provided. Check your key and signing method."},
    {"SlowDown", 503, Code::unavailable, "Please reduce your request rate."},
    {"XAmzContentChecksumMismatch", 400, Code::invalid_argument, "The provided 'x-amz-checksum' header does not match what was computed."},
    {"XAmzContentSHA256Mismatch", 400, Code::invalid_argument, "The provided 'x-amz-content-sha256' header does not match what was computed."},
    {"InvalidTag", 400, Code::invalid_argument, "The TagSet is not valid."},
    {"MetadataTooLarge", 400, Code::invalid_argument, "Your metadata headers exceed the maximum allowed metadata size."},
    {"InvalidURI", 400, Code::invalid_argument, "Couldn't parse the specified URI."},
    {"InvalidPartNumber", 416, Code::invalid_argument, "The requested partnumber is not satisfiable"},
    {"NoSuchVersion", 404, Code::not_found, "The specified version does not exist."},
    {"NoSuchBucketPolicy", 404, Code::not_found, "The bucket policy does not exist"},
    {"NoSuchCORSConfiguration", 404, Code::not_found, "The CORS configuration does not exist"},
    {"NoSuchLifecycleConfiguration", 404, Code::not_found, "The lifecycle configuration does not exist"},
    {"NoSuchWebsiteConfiguration", 404, Code::not_found, "The specified bucket does not have a website configuration"},
    {"ServerSideEncryptionConfigurationNotFoundError", 404, Code::not_found, "The server side encryption configuration was not found"},
    {"ReplicationConfigurationNotFoundError", 404, Code::not_found, "The replication configuration was not found"},
    {"ObjectLockConfigurationNotFoundError", 404, Code::not_found, "Object Lock configuration does not exist for this bucket"},
    {"InvalidObjectState", 403, Code::failed_precondition, "The operation is not valid for the current state of the object."},
};

const Row* find_row(const char* code) {
  for (const auto& r : kTable)
    if (std::strcmp(r.code, code) == 0) return &r;
  return nullptr;
}

}  // namespace

Status s3_error(const char* code, std::string message) {
  const Row* r = find_row(code);
  Code generic = r ? r->generic : Code::invalid_argument;
  if (message.empty() && r) message = r->message;
  return Status(generic, std::move(message), code);
}

S3Error to_s3_error(const Status& st) {
  S3Error e;
  e.message = st.message();
  if (st.s3_code()) {
    const Row* r = find_row(st.s3_code());
    e.code = st.s3_code();
    e.http_status = r ? r->http : 400;
    if (e.message.empty() && r) e.message = r->message;
    return e;
  }
  switch (st.code()) {
    case Code::not_found: e.code = "NoSuchKey"; e.http_status = 404; break;
    case Code::already_exists: e.code = "BucketAlreadyOwnedByYou"; e.http_status = 409; break;
    case Code::invalid_argument: e.code = "InvalidArgument"; e.http_status = 400; break;
    case Code::failed_precondition: e.code = "PreconditionFailed"; e.http_status = 412; break;
    case Code::unavailable: e.code = "ServiceUnavailable"; e.http_status = 503; break;
    case Code::permission_denied: e.code = "AccessDenied"; e.http_status = 403; break;
    case Code::unauthenticated: e.code = "AccessDenied"; e.http_status = 403; break;
    case Code::resource_exhausted: e.code = "SlowDown"; e.http_status = 503; break;
    case Code::unimplemented: e.code = "NotImplemented"; e.http_status = 501; break;
    default: e.code = "InternalError"; e.http_status = 500; break;
  }
  return e;
}

std::string error_xml(const S3Error& e, std::string_view resource, std::string_view request_id) {
  XmlWriter w;
  w.open("Error");
  w.elem("Code", e.code);
  w.elem("Message", e.message);
  w.elem("Resource", resource);
  w.elem("RequestId", request_id);
  w.close("Error");
  return w.take();
}

}  // namespace reservoir::s3
