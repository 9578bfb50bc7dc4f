"""ChirpStack v4 FUOTA deployment (built in since ChirpStack v4.12.0): the request bodies of
`api.FuotaService` for one plan (fleet.fuota.deploy.Plan), in the protobuf JSON mapping (lowerCamelCase
fields, bytes as base64, enums by name) that grpcurl and the gRPC-gateway take.

Follows `api/proto/api/fuota.proto` of chirpstack/chirpstack (v4.12+; the same messages in the
chirpstack_api crate 4.17.0): FuotaDeployment fields 2-21, AddDevicesToFuotaDeploymentRequest,
StartFuotaDeploymentRequest. ChirpStack makes the multicast group, its McAddr and McKey itself and
fragments the payload itself: the bodies carry our payload, fragment size, redundancy, data rate, frequency
and class C timeout, so both routes send the same thing the same way. The device keys need ChirpStack's
"Gen App Key" = the device's AppKey (docs/formats/fuota.md, "Keys"); no key is in these bodies.
"""

from __future__ import annotations

import base64
import math

from ..errors import UsageError

ID_PLACEHOLDER = "<id from CreateDeployment>"


def redundancy_percentage(nb_frag: int, redundancy: int) -> int:
    """fragmentation_redundancy_percentage (0-100): at least the plan's coded fragments."""
    pct = math.ceil(100 * redundancy / nb_frag)
    if pct > 100:
        raise UsageError(f"the plan wants {redundancy} coded fragments for {nb_frag} data ones ({pct} %); "
                         "ChirpStack's fragmentation_redundancy_percentage goes up to 100 %",
                         hint="TS004's code needs more in proportion for few fragments (its annex advises 20 or "
                              "more): a lower --dr (more, smaller fragments), a lower --loss, or this route's own "
                              "folder without ChirpStack")
    return pct


def deployment(plan, *, application_id: str, device_profile_id: str, name: str,
               request_status: str = "AFTER_SESSION_TIMEOUT", unicast_max_retry_count: int = 3) -> dict:
    """FuotaDeployment (fuota.proto) for the plan."""
    return {
        "applicationId": application_id,
        "deviceProfileId": device_profile_id,
        "name": name,
        "multicastGroupType": "CLASS_C",
        "multicastClassCSchedulingType": "GPS_TIME",
        "multicastDr": plan.dr,
        "multicastClassBPingSlotNbK": 0,
        "multicastFrequency": plan.freq_hz,
        "multicastTimeout": plan.timeout,
        "calculateMulticastTimeout": False,
        "unicastMaxRetryCount": unicast_max_retry_count,
        "fragmentationFragmentSize": plan.fragment_size,
        "calculateFragmentationFragmentSize": False,
        "fragmentationRedundancyPercentage": redundancy_percentage(plan.nb_frag, plan.redundancy),
        "fragmentationSessionIndex": plan.session.frag_index,
        "fragmentationMatrix": 0,
        "fragmentationBlockAckDelay": plan.session.block_ack_delay,
        "fragmentationDescriptor": base64.b64encode(plan.session.descriptor).decode(),
        "requestFragmentationSessionStatus": request_status,
        "payload": base64.b64encode(plan.payload).decode(),
    }


def requests(plan, dev_euis, *, application_id: str, device_profile_id: str, name: str,
             gateway_ids=()) -> list[dict]:
    """The calls in order, each {"method": "api.FuotaService/...", "body": {...}}. The deployment's id is
    only known from CreateDeployment's answer: the later bodies hold ID_PLACEHOLDER for it."""
    out = [{"method": "api.FuotaService/CreateDeployment",
            "body": {"deployment": deployment(plan, application_id=application_id,
                                              device_profile_id=device_profile_id, name=name)}},
           {"method": "api.FuotaService/AddDevices",
            "body": {"fuotaDeploymentId": ID_PLACEHOLDER, "devEuis": [d.lower() for d in dev_euis]}}]
    if gateway_ids:
        out.append({"method": "api.FuotaService/AddGateways",
                    "body": {"fuotaDeploymentId": ID_PLACEHOLDER, "gatewayIds": [g.lower() for g in gateway_ids]}})
    out.append({"method": "api.FuotaService/StartDeployment", "body": {"id": ID_PLACEHOLDER}})
    return out
