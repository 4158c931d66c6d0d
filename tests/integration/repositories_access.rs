//! The repositories of who may do what (`UserRepo`, `AccessRepo`) against a real database.

use actix::Actor;
use fleetgate_actors::protocol::MachineId;
use fleetgate_actors::repo::machine::enroll_machine;
use fleetgate_actors::sealing::DataKey;

use crate::repositories::{KEY, database};

#[actix_web::test]
async fn user_repo_changes_and_deletes_users_but_keeps_an_enabled_admin() {
    use fleetgate_actors::identity::Role;
    use fleetgate_actors::repo::UserRepo;
    use fleetgate_actors::repo::user::{
        ChangeUser, CreateUser, DeleteUser, ListUsers, UserChange, UserError,
    };
    let (database, _dir) = database().await;
    let repo = UserRepo::new(database.clone()).start();
    let create = |name: &str, role| CreateUser {
        username: name.to_owned(),
        role,
        password_hash: "!".to_owned(),
    };
    let root = repo
        .send(create("root", Role::Admin))
        .await
        .expect("mailbox")
        .expect("created");
    let ops = repo
        .send(create("ops", Role::Operator))
        .await
        .expect("mailbox")
        .expect("created");
    assert!(
        repo.send(create("ops", Role::Viewer))
            .await
            .expect("mailbox")
            .is_err(),
        "names are unique"
    );

    let change = |id, change| ChangeUser { id, change };
    let last_admin = repo
        .send(change(root.id, UserChange::Disabled(true)))
        .await
        .expect("mailbox");
    assert!(matches!(last_admin, Err(UserError::LastAdmin)));
    let demoted = repo
        .send(change(root.id, UserChange::Role(Role::Viewer)))
        .await
        .expect("mailbox");
    assert!(matches!(demoted, Err(UserError::LastAdmin)));
    assert!(matches!(
        repo.send(DeleteUser { id: root.id })
            .await
            .expect("mailbox"),
        Err(UserError::LastAdmin)
    ));

    let promoted = repo
        .send(change(ops.id, UserChange::Role(Role::Admin)))
        .await
        .expect("mailbox")
        .expect("changed");
    assert_eq!(promoted.role, Some(Role::Admin));
    let disabled = repo
        .send(change(root.id, UserChange::Disabled(true)))
        .await
        .expect("mailbox")
        .expect("another admin is left");
    assert!(disabled.disabled);
    let deleted = repo
        .send(DeleteUser { id: root.id })
        .await
        .expect("mailbox")
        .expect("deleted");
    assert_eq!(deleted.username, "root");
    let missing = repo
        .send(DeleteUser { id: root.id })
        .await
        .expect("mailbox");
    assert!(matches!(missing, Err(UserError::NotFound)));
    let users = repo
        .send(ListUsers)
        .await
        .expect("mailbox")
        .expect("listed");
    assert_eq!(
        users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["ops"]
    );
}

#[actix_web::test]
async fn access_repo_answers_from_roles_and_grants_and_forgets_changed_users() {
    use fleetgate_actors::identity::Role;
    use fleetgate_actors::protocol::UserId;
    use fleetgate_actors::repo::AccessRepo;
    use fleetgate_actors::repo::access::{
        AccessError, Action, CheckAccess, ForgetUser, MachineFilter, SetGrants, VisibleMachines,
    };
    use fleetgate_actors::repo::user::{CreateUser, UserChange, change_user, create_user};
    let (database, _dir) = database().await;
    let key = DataKey::from_bytes(KEY);
    let web = enroll_machine(&database, &key, "web")
        .await
        .expect("enroll")
        .id;
    let db_box = enroll_machine(&database, &key, "db")
        .await
        .expect("enroll")
        .id;
    let user = |name: &str, role| CreateUser {
        username: name.to_owned(),
        role,
        password_hash: "!".to_owned(),
    };
    let admin = create_user(&database, user("root", Role::Admin))
        .await
        .expect("user")
        .id;
    let ops = create_user(&database, user("ops", Role::Operator))
        .await
        .expect("user")
        .id;
    let viewer = create_user(&database, user("eyes", Role::Viewer))
        .await
        .expect("user")
        .id;
    let repo = AccessRepo::new(database.clone()).start();
    let grant = |user_id, machine_id, levels: &[&str]| SetGrants {
        user_id,
        machine_id,
        levels: levels.iter().map(|l| (*l).to_owned()).collect(),
    };
    repo.send(grant(ops, web, &["terminal"]))
        .await
        .expect("send")
        .expect("granted");
    repo.send(grant(viewer, web, &["terminal", "view"]))
        .await
        .expect("send")
        .expect("granted");
    let check = |user: UserId, machine_id, action| {
        let repo = repo.clone();
        async move {
            repo.send(CheckAccess {
                user_id: user,
                machine_id,
                action,
            })
            .await
            .expect("send")
            .map(|row| row.id.0)
        }
    };
    assert_eq!(check(admin, db_box, Action::Command).await, Ok(db_box.0));
    assert_eq!(check(ops, web, Action::Terminal).await, Ok(web.0));
    assert_eq!(
        check(ops, web, Action::Command).await,
        Err(AccessError::Forbidden)
    );
    assert_eq!(
        check(ops, db_box, Action::View).await,
        Err(AccessError::Forbidden)
    );
    assert_eq!(
        check(viewer, web, Action::Terminal).await,
        Err(AccessError::Forbidden),
        "viewers never get a terminal"
    );
    assert_eq!(check(viewer, web, Action::View).await, Ok(web.0));
    let nowhere = MachineId(uuid::Uuid::new_v4());
    assert_eq!(
        check(admin, nowhere, Action::View).await,
        Err(AccessError::UnknownMachine)
    );

    // Many checks at once are all answered (they no longer queue behind each other).
    let many =
        futures_util::future::join_all((0..200).map(|_| check(ops, web, Action::Terminal))).await;
    assert!(many.iter().all(|outcome| *outcome == Ok(web.0)));

    let visible = repo
        .send(VisibleMachines {
            user_id: ops,
            filter: MachineFilter::default(),
        })
        .await
        .expect("send")
        .expect("listed");
    assert_eq!(visible.iter().map(|m| m.id).collect::<Vec<_>>(), vec![web]);

    // A grant change is seen at once, despite the cache.
    repo.send(grant(ops, web, &["command"]))
        .await
        .expect("send")
        .expect("granted");
    assert_eq!(
        check(ops, web, Action::Terminal).await,
        Err(AccessError::Forbidden)
    );
    assert_eq!(check(ops, web, Action::Command).await, Ok(web.0));
    // A user disabled elsewhere is refused once the repository is told to forget them.
    change_user(&database, ops, UserChange::Disabled(true))
        .await
        .expect("disabled");
    repo.send(ForgetUser { user_id: ops }).await.expect("send");
    assert_eq!(
        check(ops, web, Action::Command).await,
        Err(AccessError::Forbidden)
    );
}
