//! Who may do what, as a table: every domain operation done on someone's
//! behalf, run once for every kind of actor on a fresh service, must serve
//! exactly the actors the table names and refuse the others with 403
//! (`Error::Forbidden`), changing nothing. The table is written from the
//! role table of docs/PROTOCOL.md ("Who may call `/v1/admin`"), the
//! self-service API (`/v1/me`: the citizen acting for themselves) and the
//! phone's endpoints (the device by its pull token), not from the code.

use potvrda_proto::Secret;
use potvrda_proto::api::{
    CreateCitizenRequest, CreateMunicipalityRequest, CreateStaffRequest, Municipality,
    PendingReset, Role,
};
use potvrda_proto::jose::EcJwk;
use potvrda_server::audit::Caller;
use potvrda_server::clock::Clock;
use potvrda_server::config::Config;
use potvrda_server::error::Error;
use potvrda_server::service::{Actor, ActorKind};
use potvrda_server::store::records::Records;
use potvrda_server::store::{AuditFilter, Device, DeviceId, EnrollOutcome, UserId};

use super::Domain;

/// The actors, in the order of the table's columns.
const ACTORS: [ActorKind; 8] = [
    ActorKind::Staff(Role::Superadmin),
    ActorKind::Staff(Role::Admin),
    ActorKind::Staff(Role::Official),
    ActorKind::Bootstrap,
    ActorKind::AuditReader,
    ActorKind::Citizen,
    ActorKind::Device,
    ActorKind::Client,
];

#[derive(Debug, Clone, Copy)]
enum Op {
    CreateMunicipality,
    CreateOfficial,
    CreateSuperadmin,
    DeactivateOfficial,
    LockCitizen,
    ReadAudit,
    CreateCitizen,
    SearchCitizens,
    ReadCitizen,
    CitizenDevices,
    CitizenEvents,
    CitizenRecord,
    RevokeCitizenDevice,
    ResetCitizen,
    ConfirmReset,
    MyDevices,
    RenameMyDevice,
    RevokeMyDevice,
    ChangePassword,
    StartDeviceAddition,
    DeviceAdditionStatus,
    DeviceInfo,
    PendingChallenges,
    Acknowledge,
}

/// Who is served (`y`) and who is refused (`.`), one column per actor:
/// superadmin, admin (own municipality), official, bootstrap token, audit
/// reader, citizen (for themselves), device, relying party.
const TABLE: &[(Op, &str)] = &[
    (Op::CreateMunicipality, "y......."),
    (Op::CreateOfficial, "yy......"),
    (Op::CreateSuperadmin, "y..y...."),
    (Op::DeactivateOfficial, "yy......"),
    (Op::LockCitizen, "yyy....."),
    (Op::ReadAudit, "yy.yy..."),
    (Op::CreateCitizen, "yyyy...."),
    (Op::SearchCitizens, "yyy....."),
    (Op::ReadCitizen, "yyy....."),
    (Op::CitizenDevices, "yyy....."),
    (Op::CitizenEvents, "yyy....."),
    (Op::CitizenRecord, "yyy....."),
    (Op::RevokeCitizenDevice, "yyy....."),
    (Op::ResetCitizen, "yyy....."),
    (Op::ConfirmReset, "yyy....."),
    (Op::MyDevices, ".....y.."),
    (Op::RenameMyDevice, ".....y.."),
    (Op::RevokeMyDevice, ".....y.."),
    (Op::ChangePassword, ".....y.."),
    (Op::StartDeviceAddition, ".....y.."),
    (Op::DeviceAdditionStatus, ".....y.."),
    (Op::DeviceInfo, "......y."),
    (Op::PendingChallenges, "......y."),
    (Op::Acknowledge, "......y."),
];

const PASSWORD: &str = "the citizen's password";
const CITIZEN: &str = "id-ana";
const DEVICE: &str = "device-of-ana";

/// A service with a municipality, one account of each role in it, and a
/// citizen opened there with one enrolled phone.
async fn world() -> Domain {
    let d = Domain::new(Config::default()).await;
    let by = Actor::Staff {
        id: "id-root".into(),
        role: Role::Superadmin,
        municipality: None,
    };
    let caller = Caller::new(None, None);
    d.svc
        .staff_admin()
        .create_municipality(
            CreateMunicipalityRequest {
                code: "novi-sad".into(),
                name: "Novi Sad".into(),
            },
            &by,
            &caller,
        )
        .await
        .expect("municipality");
    d.account("root", PASSWORD, Role::Superadmin, None).await;
    d.account("mira", PASSWORD, Role::Admin, Some("novi-sad"))
        .await;
    d.account("olga", PASSWORD, Role::Official, Some("novi-sad"))
        .await;
    d.account("petar", PASSWORD, Role::Official, Some("novi-sad"))
        .await;
    d.account("ana", PASSWORD, Role::Citizen, Some("novi-sad"))
        .await;
    let device = phone();
    let enrolled = d
        .store
        .enroll_device("unused-ana", device, d.clock.now())
        .await
        .expect("enrolled");
    assert!(
        matches!(enrolled, EnrollOutcome::Enrolled(_)),
        "{enrolled:?}"
    );
    d
}

fn phone() -> Device {
    Device {
        id: DEVICE.into(),
        user_id: CITIZEN.into(),
        name: "Ana's phone".into(),
        platform: "android".into(),
        public_key: EcJwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU".into(),
            y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0".into(),
            kid: None,
            alg: None,
            use_: None,
        },
        push: None,
        push_gone: false,
        created_at: 0,
        enrolled_via: None,
    }
}

fn actor(kind: ActorKind) -> Actor {
    let staff = |id: &str, role, municipality: Option<&str>| Actor::Staff {
        id: id.into(),
        role,
        municipality: municipality.map(str::to_owned),
    };
    match kind {
        ActorKind::Staff(Role::Superadmin) => staff("id-root", Role::Superadmin, None),
        ActorKind::Staff(Role::Admin) => staff("id-mira", Role::Admin, Some("novi-sad")),
        ActorKind::Staff(role) => staff("id-olga", role, Some("novi-sad")),
        ActorKind::Bootstrap => Actor::Bootstrap,
        ActorKind::AuditReader => Actor::AuditReader,
        ActorKind::Citizen => Actor::Citizen { id: CITIZEN.into() },
        ActorKind::Device => Actor::Device(Box::new(phone())),
        ActorKind::Client => Actor::Client {
            client_id: "portal".into(),
        },
    }
}

async fn run(d: &Domain, op: Op, by: &Actor) -> Result<(), Error> {
    let caller = Caller::new(Some("192.0.2.10".parse().expect("ip")), Some("test"));
    let c = &caller;
    let (citizen, device) = (UserId::new(CITIZEN), DeviceId::new(DEVICE));
    let svc = &d.svc;
    let staff = |username: &str, role| CreateStaffRequest {
        username: username.into(),
        display_name: username.into(),
        role,
        municipality: (role != Role::Superadmin).then(|| "novi-sad".into()),
    };
    match op {
        Op::CreateMunicipality => {
            let req = CreateMunicipalityRequest {
                code: "nis".into(),
                name: "Niš".into(),
            };
            svc.staff_admin()
                .create_municipality(req, by, c)
                .await
                .map(drop)
        }
        Op::CreateOfficial => {
            let req = staff("nada", Role::Official);
            svc.staff_admin().create_staff(req, by, c).await.map(drop)
        }
        Op::CreateSuperadmin => {
            let req = staff("sava", Role::Superadmin);
            svc.staff_admin().create_staff(req, by, c).await.map(drop)
        }
        Op::DeactivateOfficial => {
            svc.staff_admin()
                .deactivate_staff(&"id-petar".into(), by, c)
                .await
        }
        Op::LockCitizen => svc.staff_admin().set_locked(&citizen, true, by, c).await,
        Op::ReadAudit => svc.staff_admin().audit_scope(by, None).await.map(drop),
        Op::CreateCitizen => {
            let req = CreateCitizenRequest {
                username: "vesna".into(),
                display_name: "Vesna".into(),
                email: None,
                phone: None,
            };
            svc.accounts().create_citizen(req, by, c).await.map(drop)
        }
        Op::SearchCitizens => svc.counter().search_citizens("an", by, c).await.map(drop),
        Op::ReadCitizen => svc.counter().read_citizen(&citizen, by, c).await.map(drop),
        Op::CitizenDevices => svc
            .counter()
            .citizen_devices(&citizen, by, c)
            .await
            .map(drop),
        Op::CitizenEvents => svc
            .counter()
            .citizen_events(&citizen, by, c)
            .await
            .map(drop),
        Op::CitizenRecord => svc
            .counter()
            .citizen_record(&citizen, by, c)
            .await
            .map(drop),
        Op::RevokeCitizenDevice => {
            svc.counter()
                .revoke_citizen_device(&citizen, &device, by, c)
                .await
        }
        Op::ResetCitizen => svc.resets().reset_citizen(&citizen, by, c).await.map(drop),
        Op::ConfirmReset => match svc.resets().confirm_reset(&citizen, "none", by, c).await {
            // Served, and there is no such request.
            Err(Error::NotFound) => Ok(()),
            other => other.map(drop),
        },
        Op::MyDevices => svc.self_service().my_devices(by).await.map(drop),
        Op::RenameMyDevice => {
            svc.self_service()
                .rename_my_device(&device, "Ana's", by)
                .await
        }
        Op::RevokeMyDevice => svc.self_service().revoke_my_device(&device, by, c).await,
        Op::ChangePassword => {
            let (old, new) = (Secret::from(PASSWORD), Secret::from("a new long password"));
            svc.self_service().change_password(old, new, by, c).await
        }
        Op::StartDeviceAddition => svc.additions().start_device_addition(by, c).await.map(drop),
        Op::DeviceAdditionStatus => {
            match svc
                .additions()
                .device_addition_status("none", 0, by, c)
                .await
            {
                Err(Error::NotFound) => Ok(()),
                other => other.map(drop),
            }
        }
        Op::DeviceInfo => svc.devices().device_info(by).await.map(drop),
        Op::PendingChallenges => svc.devices().pending_challenges(by).await.map(drop),
        Op::Acknowledge => match svc
            .devices()
            .acknowledge(&"no-such-challenge".into(), by)
            .await
        {
            Err(Error::NotFound) => Ok(()),
            other => other,
        },
    }
}

/// What a refusal must leave as it was: the accounts (the ones a served
/// call would create too), the citizen's phone, the municipality a served
/// call would create, a pending reset, and the audit trail.
async fn snapshot(d: &Domain) -> String {
    let mut s = String::new();
    let records = d.store.as_ref();
    s += &format!(
        "{:?}\n",
        Records::<Municipality>::new(records)
            .get("nis", d.clock.now())
            .await
            .expect("municipality")
    );
    s += &format!(
        "{:?}\n",
        Records::<PendingReset>::new(records)
            .get(&UserId::new(CITIZEN), d.clock.now())
            .await
            .expect("pending reset")
            .map(|p| p.request_id)
    );
    let trail = d
        .store
        .audit_events(&AuditFilter {
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .expect("audit");
    s += &format!("{} audit events\n", trail.events.len());
    for id in [
        "id-root", "id-mira", "id-olga", "id-petar", "id-ana", "id-nada", "id-sava", "id-vesna",
    ] {
        s += &format!(
            "{:?}\n",
            d.store.user(&UserId::new(id)).await.expect("user")
        );
    }
    for name in ["nada", "sava", "vesna"] {
        s += &format!(
            "{:?}\n",
            d.store
                .user_by_name(name)
                .await
                .expect("user")
                .map(|u| u.id)
        );
    }
    s += &format!(
        "{:?}\n",
        d.store
            .devices_of(&UserId::new(CITIZEN))
            .await
            .expect("devices")
    );
    s
}

#[tokio::test]
async fn every_operation_serves_exactly_its_actors() {
    assert_eq!(TABLE.len(), 24, "one row per operation");
    let world = world().await;
    let mut wrong = Vec::new();
    for (op, row) in TABLE {
        assert_eq!(row.len(), ACTORS.len(), "{op:?}");
        for (kind, cell) in ACTORS.iter().zip(row.chars()) {
            let d = world.copy().await;
            let before = snapshot(&d).await;
            let got = run(&d, *op, &actor(*kind)).await;
            let served = !matches!(got, Err(Error::Forbidden | Error::Unauthorized));
            match (cell == 'y', served) {
                (true, true) => {
                    if let Err(e) = got {
                        wrong.push(format!("{op:?} by {kind:?}: served but failed: {e:?}"));
                    }
                }
                (false, false) => {
                    if !matches!(got, Err(Error::Forbidden)) {
                        wrong.push(format!("{op:?} by {kind:?}: refused with {got:?}, not 403"));
                    }
                    if snapshot(&d).await != before {
                        wrong.push(format!("{op:?} by {kind:?}: refused but changed the store"));
                    }
                }
                (true, false) => wrong.push(format!("{op:?} by {kind:?}: refused ({got:?})")),
                (false, true) => wrong.push(format!("{op:?} by {kind:?}: served ({got:?})")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
