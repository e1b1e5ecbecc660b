//! Preflight against the emulator: a broken setup launches nothing and
//! publishes `SweepBlocked` naming the resource, the problem and the fix.

use retrain_tests::world::{Target, World};
use serde_json::{json, Value};

async fn start(world: &mut World, pipeline: &str) -> Vec<Value> {
    world
        .deliver(
            Target::StartSweep,
            json!({"kind": "start-sweep", "pipeline": pipeline, "request_id": "preflight"}),
        )
        .await;
    world.published("SweepBlocked")
}

fn launched(world: &World) -> usize {
    world.emulator.jobs()["jobs"].as_array().map(Vec::len).unwrap_or(0)
}

fn problems(blocked: &[Value]) -> String {
    blocked
        .iter()
        .flat_map(|b| b["problems"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_setup_passes_and_launches() {
    let mut world = World::start().await;
    assert!(start(&mut world, "churn").await.is_empty());
    assert_eq!(launched(&world), 2);
    assert!(start(&mut world, "fraud-efs").await.is_empty());
    assert_eq!(launched(&world), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_rules_to_the_vpc_cidr_instead_of_anywhere_pass_and_launch() {
    let mut world = World::start().await;
    let sg = world.ids.security_group.clone();
    let egress = world.boto3(&format!(
        "ec2 = client('ec2')\nec2.revoke_security_group_egress(GroupId='{sg}', IpPermissions=[{{'IpProtocol': '-1', 'IpRanges': [{{'CidrIp': '0.0.0.0/0'}}]}}])\nec2.authorize_security_group_egress(GroupId='{sg}', IpPermissions=[{{'IpProtocol': 'tcp', 'FromPort': 988, 'ToPort': 988, 'IpRanges': [{{'CidrIp': '10.0.0.0/16'}}]}}, {{'IpProtocol': 'tcp', 'FromPort': 1018, 'ToPort': 1023, 'IpRanges': [{{'CidrIp': '10.0.0.0/16'}}]}}])\negress = ec2.describe_security_groups(GroupIds=['{sg}'])['SecurityGroups'][0]['IpPermissionsEgress']\nprint(json.dumps(egress))"
    ));
    // Nothing open to anywhere is left: the rules to the VPC's CIDR must carry it.
    let cidrs: Vec<&Value> = egress
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["IpRanges"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(cidrs.len(), 2, "{egress}");
    assert!(cidrs.iter().all(|c| c["CidrIp"] == "10.0.0.0/16"), "{egress}");
    let blocked = start(&mut world, "churn").await;
    assert!(blocked.is_empty(), "{}", problems(&blocked));
    assert_eq!(launched(&world), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subnet_outside_the_lustre_zone_blocks_the_sweep() {
    let mut world = World::start().await;
    let vpc = world.ids.vpc.clone();
    let other = world.boto3(&format!(
        "s = client('ec2').create_subnet(VpcId='{vpc}', CidrBlock='10.0.2.0/24', AvailabilityZone='us-east-1b')['Subnet']['SubnetId']\nprint(json.dumps(s))"
    ));
    let other = other.as_str().unwrap_or_default().to_owned();
    world.reconfigure(|c| c.pipelines[0].vpc.subnets = vec![other.clone()]);
    let blocked = start(&mut world, "churn").await;
    assert_eq!(launched(&world), 0, "no CreateTrainingJob");
    assert_eq!(blocked.len(), 1);
    let text = problems(&blocked);
    assert!(
        text.contains(&other) && text.contains("us-east-1b") && text.contains("us-east-1a"),
        "{text}"
    );
    assert!(text.contains("use a subnet in us-east-1a"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_security_group_without_port_988_blocks_the_sweep() {
    let mut world = World::start().await;
    let (fs_sg, sg) = (world.ids.fs_security_group.clone(), world.ids.security_group.clone());
    world.boto3(&format!(
        "client('ec2').revoke_security_group_ingress(GroupId='{fs_sg}', IpPermissions=[{{'IpProtocol': 'tcp', 'FromPort': 988, 'ToPort': 988, 'UserIdGroupPairs': [{{'GroupId': '{sg}'}}]}}])\nprint('{{}}')"
    ));
    let blocked = start(&mut world, "churn").await;
    assert_eq!(launched(&world), 0);
    let text = problems(&blocked);
    assert!(text.contains(&fs_sg) && text.contains("988"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_system_that_is_not_available_blocks_the_sweep() {
    let mut world = World::start().await;
    let fs = world.ids.lustre.clone();
    world
        .emulator
        .post(&format!("fsx/file-systems/{fs}"), json!({"Lifecycle": "MISCONFIGURED"}));
    let blocked = start(&mut world, "churn").await;
    assert_eq!(launched(&world), 0);
    let text = problems(&blocked);
    assert!(text.contains(&fs) && text.contains("MISCONFIGURED"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_outside_the_data_repository_blocks_the_sweep() {
    let mut world = World::start().await;
    let (subnet, fs_sg) = (world.ids.subnet.clone(), world.ids.fs_security_group.clone());
    let other = world.boto3(&format!(
        "f = client('fsx').create_file_system(FileSystemType='LUSTRE', StorageCapacity=1200, SubnetIds=['{subnet}'], SecurityGroupIds=['{fs_sg}'], LustreConfiguration={{'ImportPath': 's3://example-training-data/other/', 'DeploymentType': 'SCRATCH_2'}})['FileSystem']['FileSystemId']\nprint(json.dumps(f))"
    ));
    let other = other.as_str().unwrap_or_default().to_owned();
    world.reconfigure(|c| c.pipelines[0].file_system.id = other.clone());
    let blocked = start(&mut world, "churn").await;
    assert_eq!(launched(&world), 0);
    let text = problems(&blocked);
    assert!(
        text.contains("outside") && text.contains("s3://example-training-data/other/"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_efs_file_system_without_a_mount_target_in_the_subnet_zone_blocks_the_sweep() {
    let mut world = World::start().await;
    let vpc = world.ids.vpc.clone();
    let other = world.boto3(&format!(
        "s = client('ec2').create_subnet(VpcId='{vpc}', CidrBlock='10.0.3.0/24', AvailabilityZone='us-east-1c')['Subnet']['SubnetId']\nprint(json.dumps(s))"
    ));
    let other = other.as_str().unwrap_or_default().to_owned();
    world.reconfigure(|c| c.pipelines[1].vpc.subnets = vec![other.clone()]);
    let blocked = start(&mut world, "fraud-efs").await;
    assert_eq!(launched(&world), 0);
    let text = problems(&blocked);
    assert!(text.contains("us-east-1c") && text.contains("mount target"), "{text}");
}
