#!/bin/bash
# Blue/green as Azure ML's safe-rollout walkthrough does it, with --set where a pipeline templates
# the YAML: the model version comes from the pipeline, green reuses blue's file with overrides.
set -e

ENDPOINT_NAME=${ENDPOINT_NAME:-my-endpoint}
MODEL_VERSION=${MODEL_VERSION:-1}

# register the model with the version the pipeline chose, and read it back as scripts do
az ml model create -f model.yml --set version=$MODEL_VERSION
VERSION=$(az ml model show -n greeter --version $MODEL_VERSION --query version -o tsv)
if [[ $VERSION != "$MODEL_VERSION" ]]; then echo "registered version $VERSION"; exit 1; fi

az ml online-endpoint create --name $ENDPOINT_NAME -f endpoint.yml --set tags.stage=ci
az ml online-deployment create --name blue --endpoint $ENDPOINT_NAME -f blue-deployment.yml --all-traffic

# green: the same file, another model and label, set on the command line
az ml online-deployment create --name green --endpoint $ENDPOINT_NAME -f blue-deployment.yml \
  --set model=azureml:greeter:$VERSION environment_variables.ECHO_LABEL=green

# update with the file it was created from changes nothing
BEFORE=$(az ml online-deployment show --name blue --endpoint $ENDPOINT_NAME --query updated_at -o tsv)
az ml online-deployment update --name blue --endpoint $ENDPOINT_NAME -f blue-deployment.yml
AFTER=$(az ml online-deployment show --name blue --endpoint $ENDPOINT_NAME --query updated_at -o tsv)
if [[ $BEFORE != "$AFTER" ]]; then echo "update with the same file changed blue"; exit 1; fi

# create never updates what exists
if az ml online-deployment create --name green --endpoint $ENDPOINT_NAME -f blue-deployment.yml 2> refused.txt; then
  echo "create on an existing deployment was accepted"; exit 1
fi

# a tenth of the traffic to green, then change green in place, then all of it
az ml online-endpoint update --name $ENDPOINT_NAME --traffic "blue=90 green=10"
az ml online-deployment update --name green --endpoint $ENDPOINT_NAME --set environment_variables.ECHO_LABEL=green-2
az ml online-endpoint update --name $ENDPOINT_NAME --set traffic.blue=0 traffic.green=100
az ml online-endpoint show -n $ENDPOINT_NAME --query traffic > traffic.json

# call it as a client would
ENDPOINT_KEY=$(az ml online-endpoint get-credentials -n $ENDPOINT_NAME -o tsv --query primaryKey)
SCORING_URI=$(az ml online-endpoint show -n $ENDPOINT_NAME -o tsv --query scoring_uri)
curl --silent --fail-with-body --request POST "$SCORING_URI" --header "Authorization: Bearer $ENDPOINT_KEY" \
  --header 'Content-Type: application/json' --data @sample-request.json > curl-answer.json

az ml online-deployment delete --name blue --endpoint $ENDPOINT_NAME --yes
az ml online-endpoint delete --name $ENDPOINT_NAME --yes
