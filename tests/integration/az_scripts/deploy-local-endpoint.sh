#!/bin/bash
# Test a deployment on a local endpoint before it goes to the cloud, as Azure ML's
# "deploy and debug locally" walkthrough does: no endpoint create first, no traffic, no key.
set -e

ENDPOINT_NAME=${ENDPOINT_NAME:-endpt-local}

# create the deployment; --local creates its endpoint
az ml online-deployment create --local -n blue --endpoint $ENDPOINT_NAME -f blue-deployment.yml

# check the status
az ml online-endpoint show -n $ENDPOINT_NAME --local
STATUS=$(az ml online-endpoint show -n $ENDPOINT_NAME --local --query provisioning_state -o tsv)
if [[ $STATUS != "Succeeded" ]]; then echo "endpoint: $STATUS"; exit 1; fi
DEPLOY_STATUS=$(az ml online-deployment show -n blue --endpoint $ENDPOINT_NAME --local --query provisioning_state -o tsv)
if [[ $DEPLOY_STATUS != "Succeeded" ]]; then echo "deployment: $DEPLOY_STATUS"; exit 1; fi

# test the endpoint with sample data
az ml online-endpoint invoke --local --name $ENDPOINT_NAME --request-file sample-request.json > invoke-answer.json

# the scoring URI takes a request with no key
SCORING_URI=$(az ml online-endpoint show -n $ENDPOINT_NAME --local -o tsv --query scoring_uri)
echo "scoring uri: $SCORING_URI"
curl --silent --fail-with-body --request POST "$SCORING_URI" --header 'Content-Type: application/json' \
  --data @sample-request.json > curl-answer.json

# a local endpoint holds one deployment
if az ml online-deployment create --local -n green --endpoint $ENDPOINT_NAME -f blue-deployment.yml 2> refused.txt; then
  echo "a second local deployment was accepted"; exit 1
fi

# logs, then clean up
az ml online-deployment get-logs --local -n blue --endpoint $ENDPOINT_NAME --lines 50 > logs.txt
az ml online-endpoint delete --local --name $ENDPOINT_NAME --yes
