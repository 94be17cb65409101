import test from "ava";
import { parseGrpcTimeout } from "../../host/grpc-http2/timeout.js";

test("grpc-timeout values convert to milliseconds in every unit", (t) => {
  t.is(parseGrpcTimeout(undefined), undefined);
  t.is(parseGrpcTimeout("2H"), 7_200_000);
  t.is(parseGrpcTimeout("3M"), 180_000);
  t.is(parseGrpcTimeout("15S"), 15_000);
  t.is(parseGrpcTimeout("500m"), 500);
  t.is(parseGrpcTimeout("2500u"), 2.5);
  t.is(parseGrpcTimeout("3000000n"), 3);
  t.is(parseGrpcTimeout("99999999m"), 99_999_999);
  t.is(parseGrpcTimeout(" 20m "), 20);
});

test("malformed grpc-timeout values are refused with a message that shows the format", (t) => {
  for (const bad of ["", "20", "m", "20ms", "1.5S", "-5m", "123456789m", "20x", "20 m"]) {
    const err = t.throws(() => parseGrpcTimeout(bad), undefined, `"${bad}"`);
    t.regex(err!.message, /up to 8 digits and a unit/);
  }
  t.throws(() => parseGrpcTimeout(["20m", "30m"]), undefined, "two headers are not one timeout");
});
